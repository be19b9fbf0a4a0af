"""Migration order: each piccolo app after the apps its `migration_dependencies` name, whatever settings say."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import pytest

from kernel import migrations
from kernel.kernel import build_kernel
from kernel.settings import RawSettings, SettingsError


def test_a_plugin_listed_before_its_dependency_migrates_after_it() -> None:
    raw = RawSettings(Path.cwd(), "test", {"plugins": {"enabled": ["idempotency", "tenancy"]}})
    paths = migrations.app_paths(build_kernel(raw))
    assert paths == ["kernel.piccolo_app", "plugins.tenancy.piccolo_app", "plugins.idempotency.piccolo_app"]


def _app(*dependencies: str) -> SimpleNamespace:
    return SimpleNamespace(migration_dependencies=list(dependencies))


def test_a_missing_dependency_or_a_cycle_is_named() -> None:
    with pytest.raises(SettingsError, match="b needs the migrations of c"):
        migrations.dependency_order({"a": _app(), "b": _app("a", "c")})  # type: ignore[dict-item]
    with pytest.raises(SettingsError, match="cycle: a -> b -> a"):
        migrations.dependency_order({"a": _app("b"), "b": _app("a")})  # type: ignore[dict-item]
