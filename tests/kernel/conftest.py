"""In-process kernels: real settings files in a temporary project, plugins passed as objects."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import pytest

from kernel.app import SokoApp, create_app
from kernel.kernel import Kernel, build_kernel
from kernel.settings import load_raw
from kernel.testing.project import Project

KernelFactory = Callable[..., Kernel]


@pytest.fixture
def make_kernel(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> KernelFactory:
    """Build a kernel from a temporary project: `enabled` plugins by entry point, `extra` as objects."""
    for name in [key for key in os.environ if key.startswith("SOKO_")]:
        monkeypatch.delenv(name)
    monkeypatch.setenv("SOKO_ENV", "test")

    def factory(
        enabled: Iterable[str] = (),
        extra: Iterable[tuple[str, object]] = (),
        env: dict[str, str] | None = None,
        configs: dict[str, dict[str, Any]] | None = None,
        **test_settings: Any,
    ) -> Kernel:
        project = Project(root=tmp_path).settings(list(enabled), **test_settings)
        for plugin, table in (configs or {}).items():
            project.plugin_config(plugin, table)
        for name, value in (env or {}).items():
            monkeypatch.setenv(name, value)
        return build_kernel(load_raw(tmp_path), extra_plugins=extra)

    return factory


@pytest.fixture
def make_app(make_kernel: KernelFactory) -> Callable[..., SokoApp]:
    def factory(*args: Any, **kwargs: Any) -> SokoApp:
        return create_app(make_kernel(*args, **kwargs))

    return factory
