"""`soko config check` finds what startup would refuse, the shipped production settings start, and secrets come
from the environment only: real `soko` processes on the repository's own settings.toml and config/."""

from __future__ import annotations

import shutil
from pathlib import Path

import httpx
import pytest

from kernel.testing.project import Project

REPO = Path(__file__).resolve().parents[2]
PRODUCTION_SECRETS = {
    "SOKO_ENV": "production",
    "SOKO_PLUGINS__AUTH__SIGNING_KEYS": '{k1 = "' + "s" * 64 + '"}',
    "SOKO_PLUGINS__AUTH__SIGNING_KID": "k1",
    "SOKO_PLUGINS__AUTH__PEPPER": "p" * 64,
    "SOKO_PLUGINS__MESSAGING_WHATSAPP__APP_SECRET": "meta-app-secret-" + "a" * 32,
    "SOKO_PLUGINS__MESSAGING_WHATSAPP__VERIFY_TOKEN": "verify-token-" + "v" * 32,
    "SOKO_PLUGINS__TENANCY__BASE_DOMAINS": '["soko.example"]',
}


@pytest.fixture
def shipped(soko_project: Project) -> Project:
    """A project holding the repository's settings.toml and config/*.yaml, as the image ships them."""
    shutil.copy(REPO / "settings.toml", soko_project.root / "settings.toml")
    shutil.copytree(REPO / "config", soko_project.root / "config", dirs_exist_ok=True)
    return soko_project


def test_shipped_production_settings_pass_the_check_and_serve(shipped: Project) -> None:
    shipped.env |= PRODUCTION_SECRETS
    check = shipped.run("config", "check")
    assert check.returncode == 0, check.stdout + check.stderr
    assert "settings valid (env production" in check.stdout
    shipped.migrate()
    with shipped.serve() as server:
        ready = httpx.get(f"{server.base_url}/readyz", timeout=10)
        assert ready.status_code == 200, ready.text
        assert ready.json()["checks"] == {"database": "ok", "redis": "ok", "migrations": "ok"}
    assert "Traceback" not in server.log()


def test_config_check_names_the_setting_startup_would_refuse(shipped: Project) -> None:
    """The sign-in code channel pointing at the outbox, which production does not run: before, the check said
    "valid" and every command then died with a MissingChannel traceback."""
    shipped.env |= PRODUCTION_SECRETS | {"SOKO_PLUGINS__AUTH__OTP_CHANNEL": "outbox"}
    check = shipped.run("config", "check")
    assert check.returncode == 2, check.stdout + check.stderr
    assert "plugins.auth.otp_channel" in check.stderr and "'outbox'" in check.stderr
    assert "SOKO_PLUGINS__AUTH__OTP_CHANNEL" in check.stderr
    assert "Traceback" not in check.stderr
    served = shipped.run("serve", "--bind", "127.0.0.1:1", timeout=60)
    assert served.returncode == 2
    assert "plugins.auth.otp_channel" in served.stderr and "Traceback" not in served.stderr


@pytest.mark.parametrize(
    ("file", "section", "setting", "variable"),
    [
        (
            "config/local.yaml",
            'production: {plugins: {dynaconf_merge: true, auth: {pepper: "%s"}}}',
            "plugins.auth.pepper",
            "SOKO_PLUGINS__AUTH__PEPPER",
        ),
        (
            "settings.toml",
            '[production.plugins.auth]\npepper = "%s"',
            "plugins.auth.pepper",
            "SOKO_PLUGINS__AUTH__PEPPER",
        ),
        ("settings.toml", '[global]\nredis_url = "%s"', "redis_url", "SOKO_REDIS_URL"),
    ],
    ids=["plugin-secret-in-yaml", "plugin-secret-in-toml", "kernel-secret-in-toml"],
)
def test_a_secret_in_a_settings_file_is_refused_naming_the_file(
    shipped: Project, file: str, section: str, setting: str, variable: str
) -> None:
    shipped.env |= PRODUCTION_SECRETS
    path = shipped.root / file
    path.write_text((path.read_text() if path.exists() else "") + "\n" + section % ("q" * 64) + "\n")
    for command in (("config", "check"), ("serve", "--bind", "127.0.0.1:1")):
        result = shipped.run(*command, timeout=60)
        assert result.returncode == 2, result.stdout + result.stderr
        line = next((line for line in result.stderr.splitlines() if line.strip().startswith(f"- {setting}:")), "")
        assert "secret" in line and file in line and variable in line, result.stderr


def test_an_empty_secret_variable_counts_as_missing(shipped: Project) -> None:
    shipped.env |= PRODUCTION_SECRETS | {"SOKO_PLUGINS__AUTH__PEPPER": ""}
    check = shipped.run("config", "check")
    assert check.returncode == 2
    assert "plugins.auth.pepper: required; set the environment variable SOKO_PLUGINS__AUTH__PEPPER" in check.stderr
