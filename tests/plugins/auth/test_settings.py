"""Secrets and environments: outside development and test, auth refuses to start without its secrets and sets
Secure cookies; the outbox, which keeps sign-in codes unsent, refuses to run at all; the OpenAPI document says
which operations need credentials."""

from __future__ import annotations

import httpx
import pytest
from quart import Response

from kernel.kernel import build_kernel
from kernel.settings import load_raw
from kernel.testing.project import Project, Running
from plugins.auth.cookies import set_login_cookies
from plugins.auth.runtime import auth_of


def test_production_refuses_to_start_without_secrets_and_without_outbox(project: Project) -> None:
    bare = {
        "SOKO_PLUGINS__AUTH__SIGNING_KEYS": "",
        "SOKO_PLUGINS__AUTH__SIGNING_KID": "",
        "SOKO_PLUGINS__AUTH__PEPPER": "",
    }
    project.env = {key: value for key, value in project.env.items() if key not in bare}
    project.settings(["tenancy", "auth"])
    result = project.run("config", "check", SOKO_ENV="production")
    assert result.returncode == 2
    assert "SOKO_PLUGINS__AUTH__SIGNING_KEYS" in result.stderr
    assert "SOKO_PLUGINS__AUTH__PEPPER" in result.stderr

    project.settings(["tenancy", "auth", "outbox"])
    result = project.run(
        "config",
        "check",
        SOKO_ENV="production",
        SOKO_PLUGINS__AUTH__SIGNING_KEYS='{k = "' + "k" * 40 + '"}',
        SOKO_PLUGINS__AUTH__SIGNING_KID="k",
        SOKO_PLUGINS__AUTH__PEPPER="p" * 40,
    )
    assert result.returncode == 2
    assert "outbox" in result.stderr and "development and test only" in result.stderr


def test_weak_or_unknown_signing_keys_are_settings_errors(project: Project) -> None:
    result = project.run(
        "config", "check", SOKO_PLUGINS__AUTH__SIGNING_KEYS='{k = "short"}', SOKO_PLUGINS__AUTH__SIGNING_KID="other"
    )
    assert result.returncode == 2
    assert "plugins.auth.signing_keys" in result.stderr
    assert "at least 32 characters" in result.stderr


async def test_cookies_are_secure_host_cookies_outside_development_and_test(
    project: Project, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name, value in project.environment(SOKO_ENV="production").items():
        if name.startswith("SOKO_"):
            monkeypatch.setenv(name, value)
    monkeypatch.setenv("SOKO_PLUGINS__AUTH__OTP_CHANNEL", "whatsapp")
    monkeypatch.setenv("SOKO_PLUGINS__MESSAGING_WHATSAPP__APP_SECRET", "a" * 40)
    monkeypatch.setenv("SOKO_PLUGINS__MESSAGING_WHATSAPP__VERIFY_TOKEN", "v" * 40)
    project.settings(["tenancy", "auth", "messaging_whatsapp"])
    auth = auth_of(build_kernel(load_raw(project.root)))
    response = Response()
    set_login_cookies(auth, response, "session-token")
    headers = [header.lower() for header in response.headers.getlist("Set-Cookie")]
    assert len(headers) == 2
    assert all("secure" in header and "samesite=lax" in header for header in headers)
    # __Host- cookies: a browser takes them only Secure, on Path=/ and without Domain, from this very host.
    assert sorted(header.split("=", 1)[0] for header in headers) == ["__host-soko_csrf", "__host-soko_session"]
    assert all("path=/" in header and "domain" not in header for header in headers)


def test_openapi_documents_who_may_call_what(server: Running) -> None:
    document = httpx.get(f"{server.base_url}/openapi.json").json()
    paths = document["paths"]
    assert paths["/auth/me"]["get"]["security"] == [{"bearerAuth": []}, {"sessionCookie": []}]
    assert paths["/auth/logout"]["post"]["security"] == [{"bearerAuth": []}, {"sessionCookie": [], "csrfHeader": []}]
    assert {"401", "403"} <= set(paths["/admin/auth/staff"]["get"]["responses"])
    assert {"204", "401"} <= set(paths["/auth/logout"]["post"]["responses"])
    assert "security" not in paths["/auth/otp/request"]["post"]
    assert paths["/auth/otp/request"]["post"]["requestBody"]
