"""The issue's acceptance, against `soko serve` run as 2 processes sharing the test Redis.

The shipped policies (auth, payments, webhooks) are served as configured, plus test policies on probe routes.
127.0.0.1 is the one trusted proxy; every other loopback address is an untrusted client, one per test, so the
tests share the server without sharing counts.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from redis import Redis

from kernel.testing.project import Project, Running, wait_for
from kernel.testing.services import Database, Servers
from plugins.ratelimit.settings import DEFAULT_POLICIES
from tests.plugins.ratelimit.harness import COUNTING_TIMEOUT_MS, PROXY, client, probe_project, unique_address

SLIDING_WINDOW_S = 4
TEST_POLICIES = [
    {"name": "burst", "routes": ["GET /probe/burst"], "limit": 20, "window_seconds": 60, "keys": ["client_ip"]},
    {
        "name": "sliding",
        "routes": ["GET /probe/sliding"],
        "limit": 5,
        "window_seconds": SLIDING_WINDOW_S,
        "keys": ["client_ip"],
    },
]
PHONE_WRITTEN_THREE_WAYS = ["0712 345 678", "+254712345678", "254712345678"]
RATE_LIMIT = re.compile(r'^"(?P<name>[a-z_-]+)";r=(?P<r>\d+);t=(?P<t>\d+)$')


@pytest.fixture(scope="module")
def project(
    tmp_path_factory: pytest.TempPathFactory, soko_servers: Servers, soko_database: Database, edgeprobe: Path
) -> Project:
    policies = [policy.model_dump(mode="json") for policy in DEFAULT_POLICIES] + TEST_POLICIES
    return probe_project(
        tmp_path_factory.mktemp("limits"),
        soko_servers,
        soko_database,
        edgeprobe,
        ["ratelimit"],
        {
            "ratelimit": {
                "policies": policies,
                "trusted_proxies": [f"{PROXY}/32"],
                "redis_timeout_ms": COUNTING_TIMEOUT_MS,
            }
        },
    )


@pytest.fixture(scope="module")
def server(project: Project) -> Iterator[Running]:
    with project.serve("--workers", "2") as running:
        yield running


def remaining(response: httpx.Response) -> tuple[str, int, int]:
    match = RATE_LIMIT.match(response.headers["RateLimit"])
    assert match, response.headers["RateLimit"]
    return match["name"], int(match["r"]), int(match["t"])


def assert_refused(response: httpx.Response, policy: str, window: int) -> None:
    """429 problem+json `rate_limited` with Retry-After (whole seconds, >= 1) and the draft's fields."""
    assert response.status_code == 429, response.text
    assert response.headers["content-type"] == "application/problem+json"
    body = response.json()
    assert body["code"] == "rate_limited"
    assert body["violated_policies"] == [policy]
    retry_after = int(response.headers["Retry-After"])
    assert 1 <= retry_after <= window
    name, left, reset = remaining(response)
    assert (name, left) == (policy, 0)
    assert reset <= retry_after  # Retry-After is never earlier than `t`
    assert response.headers["RateLimit-Policy"] == f'"{policy}";q={"5" if policy == "auth" else "60"};w={window}'


def test_sixth_login_or_otp_request_from_one_ip_is_refused(server: Running) -> None:
    routes = ["/auth/login", "/auth/otp/request", "/auth/otp/verify"]
    with client(server.base_url, unique_address()) as http:
        answers = [http.post(routes[index % 3], json={"email": f"user{index}@example.com"}) for index in range(6)]
    for index, answer in enumerate(answers[:5]):
        assert answer.status_code == 200, answer.text
        assert remaining(answer)[:2] == ("auth", 4 - index)  # RateLimit on successes too
        assert answer.headers["RateLimit-Policy"] == '"auth";q=5;w=60'
    assert_refused(answers[5], "auth", 60)


def test_sixth_request_for_one_phone_from_six_ips_is_refused(server: Running) -> None:
    """Through the trusted proxy, each request comes from its own client address; the phone is what repeats."""
    with client(server.base_url, PROXY) as http:
        answers = [
            http.post(
                "/auth/otp/request",
                json={"phone": PHONE_WRITTEN_THREE_WAYS[index % 3]},
                headers={"X-Forwarded-For": f"198.51.100.{index + 1}"},
            )
            for index in range(6)
        ]
    assert [answer.status_code for answer in answers] == [200] * 5 + [429]
    assert_refused(answers[5], "auth", 60)
    with client(server.base_url, PROXY) as http:
        other_phone = http.post(
            "/auth/otp/request", json={"phone": "0722 000 001"}, headers={"X-Forwarded-For": "198.51.100.6"}
        )
    assert other_phone.status_code == 200  # the sixth address itself was never the problem


def test_sixty_first_webhook_is_refused_and_spoofed_forwarded_for_changes_nothing(server: Running) -> None:
    """An untrusted peer that claims a new X-Forwarded-For on every call is still counted as itself."""
    with client(server.base_url, unique_address()) as http:
        answers = [
            http.post("/webhooks/probe", json={}, headers={"X-Forwarded-For": f"203.0.113.{index % 250 + 1}"})
            for index in range(61)
        ]
        spoofed = http.post("/webhooks/probe", json={}, headers={"X-Forwarded-For": "192.0.2.77, 10.0.0.1"})
    assert [answer.status_code for answer in answers] == [200] * 60 + [429]
    assert_refused(answers[60], "webhooks", 60)
    assert spoofed.status_code == 429


async def test_limits_hold_across_processes_under_concurrency(server: Running, project: Project) -> None:
    """30 requests at once from one client, split between the 2-process server and a second `soko serve` of the
    same project (as behind a load balancer; the kernel, not the test, decides which of the first server's
    processes takes a connection): exactly the limit (20) is admitted in all, by both servers."""
    address = unique_address()
    with project.serve() as other:
        async with (
            _concurrent_client(server.base_url, address) as first,
            _concurrent_client(other.base_url, address) as second,
        ):
            # One request to each server first: which server's requests win the concurrent burst is up to the
            # scheduler, and "both servers admitted some" must not depend on it.
            opening = [await http.get("/probe/burst") for http in (first, second)]
            burst = await asyncio.gather(*(http.get("/probe/burst") for http in (first, second) * 14))
    answers = opening + list(burst)
    assert [answer.status_code for answer in opening] == [200, 200]
    statuses = sorted(answer.status_code for answer in answers)
    assert statuses == [200] * 20 + [429] * 10
    assert all("RateLimit" in answer.headers for answer in answers)  # every one counted, none let through unlimited
    assert len({answer.request.url.port for answer in answers if answer.status_code == 200}) == 2


def _concurrent_client(base_url: str, address: str) -> httpx.AsyncClient:
    transport = httpx.AsyncHTTPTransport(local_address=address, limits=httpx.Limits(max_keepalive_connections=0))
    return httpx.AsyncClient(base_url=base_url, transport=transport, timeout=10)


def test_window_slides_instead_of_resetting_at_a_boundary(server: Running, soko_servers: Servers) -> None:
    """A full burst at the end of one fixed 4 s window and another at the start of the next: a fixed window would
    admit both (2x the limit within about a second); the sliding window refuses the second until the first ages
    out. Time is Redis's own clock, the one the script counts with; the test waits for boundaries by polling it."""
    redis = Redis.from_url(soko_servers.redis_url)

    def redis_now() -> float:
        seconds, microseconds = redis.time()
        return seconds + microseconds / 1_000_000

    def phase() -> float:
        return redis_now() % SLIDING_WINDOW_S

    with client(server.base_url, unique_address()) as http:
        end_of_window = SLIDING_WINDOW_S - 0.8
        wait_for(
            lambda: end_of_window <= phase() < end_of_window + 0.3,
            timeout=SLIDING_WINDOW_S + 1,
            interval=0.005,
            what="the end of a fixed window",
        )
        started = redis_now()
        first_burst = [http.get("/probe/sliding") for _ in range(5)]
        assert [answer.status_code for answer in first_burst] == [200] * 5
        wait_for(lambda: phase() < 0.5, timeout=3, interval=0.005, what="the start of the next fixed window")
        second_burst = [http.get("/probe/sliding") for _ in range(5)]
        assert redis_now() - started < SLIDING_WINDOW_S, "the second burst must fall within one window of the first"
        assert [answer.status_code for answer in second_burst] == [429] * 5
        assert int(second_burst[0].headers["Retry-After"]) <= SLIDING_WINDOW_S
        wait_for(
            lambda: redis_now() > started + SLIDING_WINDOW_S + 0.5,
            timeout=SLIDING_WINDOW_S + 1,
            what="the first burst to age out",
        )
        assert http.get("/probe/sliding").status_code == 200
    redis.close()
