"""Security headers, CSP nonces, CORS and CSRF against `soko serve` with the security and ratelimit plugins.

The probe plugin stands in for the views (and for the auth plugin's cookies); tenancy is off here, so the CORS
allowlist is the panel origins alone (tests/plugins/security/test_storefronts.py covers tenants' storefronts).
"""

from __future__ import annotations

import base64
import re
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from kernel.testing.project import Running
from kernel.testing.services import Database, Servers
from tests.plugins.ratelimit.harness import COUNTING_TIMEOUT_MS, client, probe_project, unique_address

PANEL = "https://panel.example.com"
NONCE = re.compile(r"'nonce-([A-Za-z0-9_-]+)'")
EXPECTED = {
    "Strict-Transport-Security": "max-age=31536000; includeSubDomains",
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "strict-origin-when-cross-origin",
    "Cross-Origin-Opener-Policy": "same-origin",
    "Cross-Origin-Resource-Policy": "same-origin",
    "Cache-Control": "no-store",
    "Vary": "Origin",
}


@pytest.fixture(scope="module")
def server(
    tmp_path_factory: pytest.TempPathFactory, soko_servers: Servers, soko_database: Database, edgeprobe: Path
) -> Iterator[Running]:
    tight = {"name": "tight", "routes": ["GET /probe/tight"], "limit": 1, "window_seconds": 60, "keys": ["client_ip"]}
    project = probe_project(
        tmp_path_factory.mktemp("security"),
        soko_servers,
        soko_database,
        edgeprobe,
        ["security", "ratelimit"],
        {
            "security": {"cors": {"panel_origins": [PANEL]}},
            "ratelimit": {"policies": [tight], "redis_timeout_ms": COUNTING_TIMEOUT_MS},
        },
    )
    with project.serve() as running:
        yield running


@pytest.fixture
def http(server: Running) -> Iterator[httpx.Client]:
    with client(server.base_url, unique_address()) as connected:
        yield connected


def assert_secured(response: httpx.Response) -> str:
    """Every security header is there and nothing names the server; returns the CSP nonce."""
    for name, value in EXPECTED.items():
        assert response.headers.get(name) == value, (response.status_code, name, response.headers.get(name))
    assert "camera=()" in response.headers["Permissions-Policy"]
    assert "server" not in response.headers and "x-powered-by" not in response.headers
    policy = response.headers["Content-Security-Policy"]
    assert "frame-ancestors 'none'" in policy
    nonces = NONCE.findall(policy)
    assert nonces and len(set(nonces)) == 1
    assert len(base64.urlsafe_b64decode(nonces[0] + "==")) >= 16  # at least 128 bits
    return nonces[0]


def test_every_response_is_secured_errors_included(http: httpx.Client) -> None:
    answers = {
        200: http.get("/probe/tight"),
        429: http.get("/probe/tight"),
        404: http.get("/no/such/route"),
        500: http.get("/boom"),
    }
    for status, answer in answers.items():
        assert answer.status_code == status, answer.text
        assert_secured(answer)
    assert answers[500].json()["code"] == "internal_error"
    assert answers[429].json()["code"] == "rate_limited"


def test_the_nonce_is_fresh_on_every_response_and_given_to_the_view(http: httpx.Client) -> None:
    answers = [http.get("/probe/page") for _ in range(20)]
    nonces = [assert_secured(answer) for answer in answers]
    assert len(set(nonces)) == len(nonces)
    assert [answer.json()["nonce"] for answer in answers] == nonces


def test_an_unlisted_origin_gets_no_cors_consent(http: httpx.Client) -> None:
    evil = {"Origin": "https://evil.example.com"}
    answer = http.get("/probe/data", headers=evil)
    assert answer.status_code == 200
    assert "access-control-allow-origin" not in answer.headers
    assert "access-control-allow-credentials" not in answer.headers
    refused = http.options("/panel/orders", headers=evil | {"Access-Control-Request-Method": "POST"})
    assert refused.status_code == 403 and refused.json()["code"] == "forbidden"
    assert "access-control-allow-origin" not in refused.headers
    assert_secured(refused)


def test_a_listed_origins_preflight_and_request_succeed(http: httpx.Client) -> None:
    preflight = http.options(
        "/panel/orders",
        headers={
            "Origin": PANEL,
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "content-type, idempotency-key, x-csrf-token, authorization",
        },
    )
    assert preflight.status_code == 204
    assert preflight.headers["Access-Control-Allow-Origin"] == PANEL
    assert preflight.headers["Access-Control-Allow-Credentials"] == "true"
    assert "POST" in preflight.headers["Access-Control-Allow-Methods"]
    allowed = {name.strip().lower() for name in preflight.headers["Access-Control-Allow-Headers"].split(",")}
    assert {"content-type", "idempotency-key", "x-csrf-token", "authorization"} <= allowed
    assert_secured(preflight)

    answer = http.get("/probe/data", headers={"Origin": PANEL})
    assert answer.headers["Access-Control-Allow-Origin"] == PANEL
    assert answer.headers["Access-Control-Allow-Credentials"] == "true"
    assert "RateLimit" in answer.headers["Access-Control-Expose-Headers"]


def test_csrf_double_submit_for_cookie_sessions_only(http: httpx.Client) -> None:
    login = http.post("/panel/session")
    assert login.status_code == 200
    token = login.json()["csrf"]
    assert http.cookies["soko_csrf"] == token and "soko_session" in http.cookies

    missing = http.post("/panel/orders", json={})
    assert missing.status_code == 403 and missing.json()["code"] == "csrf_failed"
    assert_secured(missing)
    wrong = http.post("/panel/orders", json={}, headers={"X-CSRF-Token": token[:-1] + "x"})
    assert wrong.status_code == 403 and wrong.json()["code"] == "csrf_failed"
    assert http.post("/panel/orders", json={}, headers={"X-CSRF-Token": token}).status_code == 200

    with client(str(http.base_url), unique_address()) as bearer:
        assert bearer.post("/panel/orders", json={}, headers={"Authorization": "Bearer a.b.c"}).status_code == 200
        bearer.cookies.set("soko_session", "stolen-or-stale")
        assert bearer.post("/panel/orders", json={}, headers={"Authorization": "Bearer a.b.c"}).status_code == 200


def test_the_docs_page_may_load_swagger_ui_and_nothing_else(http: httpx.Client) -> None:
    page = http.get("/docs")
    assert page.status_code == 200
    policy = page.headers["Content-Security-Policy"]
    directives = {part.split()[0]: part.split()[1:] for part in policy.split("; ")}
    assert directives["script-src"] == ["'self'"]
    urls = re.findall(r'<(?:script|link)[^>]+(?:src|href)="([^"]+)"', page.text)
    assert urls and all(url.startswith("/docs/assets/") for url in urls), urls  # this server, no CDN
    assert re.findall(r"<script>(.*?)</script>", page.text, re.S) == []  # no inline script to allow
    for url in urls:
        asset = http.get(url)
        kind = asset.headers["Content-Type"].split(";")[0]
        assert asset.status_code == 200 and asset.content, url
        assert kind in {"text/css", "text/javascript", "application/javascript"}, (url, kind)
    assert directives["frame-ancestors"] == ["'none'"] and directives["default-src"] == ["'none'"]
