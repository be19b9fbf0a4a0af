"""The `auth` policy on the auth plugin's own routes, served for real: staff sign-in and customer codes.

The probe's stand-ins cover the acceptance in test_limits.py; this proves the shipped policy fits the routes and
bodies the auth plugin actually has (`email` at login, `phone` for codes), with tenancy resolving the store.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from kernel.testing.project import Running
from kernel.testing.services import Database, Servers
from tests.plugins.ratelimit.harness import COUNTING_TIMEOUT_MS, client, probe_project, unique_address

SECRET = "0123456789abcdef0123456789abcdef"


@pytest.fixture(scope="module")
def store() -> str:
    return f"store{uuid.uuid4().hex[:8]}"


@pytest.fixture(scope="module")
def server(
    tmp_path_factory: pytest.TempPathFactory,
    soko_servers: Servers,
    soko_database: Database,
    edgeprobe: Path,
    store: str,
) -> Iterator[Running]:
    project = probe_project(
        tmp_path_factory.mktemp("auth-limits"),
        soko_servers,
        soko_database,
        edgeprobe,
        ["tenancy", "outbox", "auth", "ratelimit"],
        {"tenancy": {"base_domains": ["localhost"]}, "ratelimit": {"redis_timeout_ms": COUNTING_TIMEOUT_MS}},
        env={
            "SOKO_PLUGINS__AUTH__SIGNING_KEYS": f'{{k1 = "{SECRET}"}}',
            "SOKO_PLUGINS__AUTH__SIGNING_KID": "k1",
            "SOKO_PLUGINS__AUTH__PEPPER": SECRET,
        },
        with_probe=False,
    )
    created = project.run("tenants", "create", store, "--name", store)
    assert created.returncode == 0, created.stderr
    with project.serve() as running:
        yield running


@pytest.fixture
def http(server: Running, store: str) -> Iterator[httpx.Client]:
    with client(server.base_url, unique_address(), headers={"Host": f"{store}.localhost"}) as connected:
        yield connected


def test_sixth_staff_sign_in_from_one_address_is_refused(http: httpx.Client) -> None:
    answers = [
        http.post("/auth/login", json={"email": f"staff{n}@example.com", "password": "not-the-password"})
        for n in range(6)
    ]
    assert [answer.status_code for answer in answers[:5]] == [401] * 5, answers[0].text
    assert answers[4].headers["RateLimit"].startswith('"auth";r=0;t=')
    assert answers[5].status_code == 429 and answers[5].json()["code"] == "rate_limited"


def test_sixth_code_request_for_one_phone_from_six_addresses_is_refused(server: Running, store: str) -> None:
    answers = []
    for phone in ["0712 345 678", "+254712345678", "254712345678"] * 2:
        with client(server.base_url, unique_address(), headers={"Host": f"{store}.localhost"}) as http:
            answers.append(http.post("/auth/otp/request", json={"phone": phone}))
    assert all(answer.status_code < 300 for answer in answers[:5]), answers[0].text
    assert answers[5].status_code == 429 and answers[5].json()["violated_policies"] == ["auth"]


def test_token_refresh_is_limited_per_address(http: httpx.Client) -> None:
    """Issue 13, item 10: refreshing was in no policy, so refresh tokens could be guessed at any rate."""
    answers = [http.post("/auth/token/refresh", json={"refresh_token": f"guess-{n:016d}"}) for n in range(31)]
    assert [answer.status_code for answer in answers[:30]] == [401] * 30, answers[0].text
    assert answers[29].headers["RateLimit"].startswith('"token_refresh";r=0;t=')
    assert answers[30].status_code == 429 and answers[30].json()["violated_policies"] == ["token_refresh"]
