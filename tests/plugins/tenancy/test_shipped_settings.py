"""What config/tenancy.yaml ships, per environment."""

from __future__ import annotations

from pathlib import Path

import pytest

from kernel.settings import load_raw, plugin_table
from plugins.tenancy.settings import TenancySettings

REPO = Path(__file__).resolve().parents[3]


def test_development_lets_the_docs_page_name_a_store_by_header_on_every_route(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SOKO_ENV", "development")
    development = TenancySettings.model_validate(plugin_table(load_raw(REPO), "tenancy"))
    monkeypatch.setenv("SOKO_ENV", "production")
    production = TenancySettings.model_validate(plugin_table(load_raw(REPO), "tenancy"))
    assert "/*" in development.header_routes and "/*" not in production.header_routes
    assert "/docs/*" in production.exempt_routes
