"""The security plugin's settings: what startup refuses, how origins are read, and the shipped defaults."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest
from pydantic import ValidationError

from kernel.settings import load_raw, plugin_table
from kernel.testing.project import Project, free_port
from plugins.security.csp import CspTemplate
from plugins.security.settings import CorsSettings, SecuritySettings

REPO = Path(__file__).resolve().parents[3]


def test_a_wildcard_origin_stops_serve_before_it_binds(soko_project: Project) -> None:
    soko_project.settings(["security"]).plugin_config(
        "security", {"cors": {"panel_origins": ["https://panel.example.com", "*"]}}
    )
    port = free_port()
    result = soko_project.run("serve", "--bind", f"127.0.0.1:{port}")
    assert result.returncode == 2
    assert "plugins.security.cors.panel_origins" in result.stderr
    assert "'*' is not allowed" in result.stderr and "config/security.yaml" in result.stderr
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", port))  # nothing took the port


@pytest.mark.parametrize(
    ("written", "origin"),
    [
        ("https://Panel.Example.com", "https://panel.example.com"),
        ("https://panel.example.com:443/", "https://panel.example.com"),
        ("http://localhost:5173", "http://localhost:5173"),
    ],
)
def test_origins_are_read_as_browsers_send_them(written: str, origin: str) -> None:
    assert CorsSettings(panel_origins=[written]).panel_origins == [origin]


@pytest.mark.parametrize(
    ("written", "error"),
    [
        ("*", "'*' is not allowed"),
        ("panel.example.com", "is not an origin"),
        ("https://panel.example.com/app", "without a path"),
        ("https://user:pw@panel.example.com", "is not an origin"),
        ("null", "is not an origin"),
    ],
)
def test_bad_origins_are_refused(written: str, error: str) -> None:
    with pytest.raises(ValidationError, match=error):
        CorsSettings(panel_origins=[written])


@pytest.mark.parametrize(
    "table",
    [
        {"hsts_max_age_seconds": 86_400},
        {"cors": {"allow_headers": ["*"]}},
        {"content_security_policy": {"script-src": ["'self'; object-src *"]}},
        {"no_store_routes": ["api/*"]},
    ],
)
def test_weakening_or_malformed_settings_are_refused(table: dict[str, object]) -> None:
    with pytest.raises(ValidationError):
        SecuritySettings.model_validate(table)


def test_shipped_config_equals_the_built_in_defaults(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SOKO_ENV", "production")  # development differs on purpose (see the test below)
    assert SecuritySettings.model_validate(plugin_table(load_raw(REPO), "security")) == SecuritySettings()


def test_policy_text_puts_the_nonce_where_the_placeholder_is() -> None:
    template = CspTemplate({"script-src": ["'nonce'", "'strict-dynamic'"], "style-src": ["'nonce'"], "upgrade": []})
    assert template.render("abc") == "script-src 'nonce-abc' 'strict-dynamic'; style-src 'nonce-abc'; upgrade"


@pytest.mark.parametrize(
    ("env", "schemes"), [("development", ["https", "http"]), ("test", ["https"]), ("production", ["https"])]
)
def test_storefronts_may_use_plain_http_in_development_only(
    env: str, schemes: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SOKO_ENV", env)
    table = plugin_table(load_raw(REPO), "security")
    assert SecuritySettings.model_validate(table).cors.storefront_schemes == schemes
