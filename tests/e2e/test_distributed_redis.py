"""soko on the Redis deployments that scale: a Redis Cluster (3 primaries, 3 replicas) and a primary with a replica
watched by 3 Sentinels, started from the machine's packages (kernel/testing/engines.py).

Each test runs on both, with real `soko serve` and real `taskiq worker` processes: rate limits stay exact across
processes, a SIGKILLed worker's job still finishes once, and a primary killed mid-run fails over without a restart
of anything soko runs, losing no accepted job. The failover test is last: it leaves the deployment changed.
"""

from __future__ import annotations

import asyncio
import itertools
import subprocess
import time
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import AsyncExitStack
from pathlib import Path
from types import SimpleNamespace

import httpx
import pytest
from redis import Redis
from taskiq import AsyncBroker
from taskiq.exceptions import SendTaskError

from kernel import PaymentError, PaymentErrorCode, hookimpl
from kernel.kernel import build_kernel
from kernel.periodic import periodic
from kernel.redis_client import opened, redis_client
from kernel.settings import RawSettings
from kernel.testing.engines import RedisClusterEngine, RedisDeployment, redis_deployment
from kernel.testing.project import Project, Running, eventually
from kernel.testing.services import Database, Servers
from plugins.payments_mpesa.ledger import PushLedger
from plugins.payments_mpesa.tokens import TokenCache
from plugins.ratelimit.settings import DEFAULT_POLICIES
from tests.kernel.queue_app import build_broker
from tests.kernel.test_queue import kill_group, queue_app_workers
from tests.plugins.ratelimit.harness import COUNTING_TIMEOUT_MS, client, edgeprobe, probe_project, unique_address

__all__ = ["edgeprobe"]  # the probe plugin's fixture, shared with the ratelimit tests

ROOT = Path(__file__).resolve().parents[2]
IDLE_TIMEOUT_MS = 1500
BURST = {"name": "burst", "routes": ["GET /probe/burst"], "limit": 20, "window_seconds": 60, "keys": ["client_ip"]}
# Counted on every request of the failover run and refused (503) while Redis cannot count: a failure is visible.
STEADY = {
    "name": "steady",
    "routes": ["GET /probe/steady"],
    "limit": 100_000,
    "window_seconds": 60,
    "keys": ["client_ip"],
    "failure": "closed",
}
# What the operations guide promises (docs/operations.md): with the failure detection these engines are started
# with (1 s), soko serves again within this long of a primary's death, without a restart.
RECOVERY_BOUND_S = 15.0


@pytest.fixture(scope="module", params=["cluster", "sentinel"])
def deployment(request: pytest.FixtureRequest) -> Iterator[RedisDeployment]:
    with redis_deployment(request.param) as started:
        yield started


@pytest.fixture(scope="module")
def project(
    tmp_path_factory: pytest.TempPathFactory,
    soko_servers: Servers,
    soko_database: Database,
    edgeprobe: Path,
    deployment: RedisDeployment,
) -> Project:
    """The ratelimit plugin with the shipped policies and two test policies, on this deployment's Redis."""
    policies = [policy.model_dump(mode="json") for policy in DEFAULT_POLICIES] + [BURST, STEADY]
    return probe_project(
        tmp_path_factory.mktemp(f"limits-{deployment.kind}"),
        Servers(soko_servers.admin_url, deployment.engine.url),
        soko_database,
        edgeprobe,
        ["ratelimit"],
        {"ratelimit": {"policies": policies, "redis_timeout_ms": COUNTING_TIMEOUT_MS}},
        env=deployment.env,
    )


@pytest.fixture
def queue(deployment: RedisDeployment) -> str:
    """A stream of the test's own, on the primary that also holds the tenant-less counters (slot of `{-}`), so
    killing that one primary takes both away at once."""
    counters = deployment.primary_of("{-}")
    while deployment.primary_of(name := f"soko-test-{uuid.uuid4().hex[:12]}") != counters:
        pass
    return name


@pytest.fixture
async def producer(queue: str, deployment: RedisDeployment) -> AsyncIterator[AsyncBroker]:
    broker = build_broker(queue, IDLE_TIMEOUT_MS, deployment.settings)
    await broker.startup()
    try:
        yield broker
    finally:
        await broker.shutdown()


@pytest.fixture
def start_worker(
    queue: str, deployment: RedisDeployment, tmp_path: Path
) -> Iterator[Callable[[str], subprocess.Popen[bytes]]]:
    """`taskiq worker` processes of tests/kernel/queue_app.py on this deployment; SIGKILLed at teardown."""
    env = worker_env(deployment) | {"SOKO_TEST_QUEUE": queue, "SOKO_TEST_IDLE_TIMEOUT_MS": str(IDLE_TIMEOUT_MS)}
    with queue_app_workers(env, tmp_path) as start:
        yield start


def worker_env(deployment: RedisDeployment) -> dict[str, str]:
    """The deployment's Redis for tests/kernel/queue_app.py."""
    service = deployment.env.get("SOKO_REDIS_SENTINEL_SERVICE")
    return {"SOKO_TEST_REDIS_URL": deployment.engine.url, "SOKO_TEST_REDIS_MODE": deployment.kind} | (
        {"SOKO_TEST_REDIS_SERVICE": service} if service else {}
    )


async def test_limits_are_exact_across_processes(project: Project, deployment: RedisDeployment) -> None:
    """30 concurrent requests split between a 2-process and a 1-process `soko serve`: exactly the burst limit (20)
    is admitted, by both; the shipped auth policy refuses exactly the sixth login. Every counter key carries the
    `{tenant}` hash tag (`{-}` here, no tenant), so one Lua call's keys share a slot."""
    address = unique_address()
    with project.serve("--workers", "2") as first_server, project.serve() as second_server:
        transports = [
            httpx.AsyncHTTPTransport(local_address=address, limits=httpx.Limits(max_keepalive_connections=0))
            for _ in range(2)
        ]
        async with (
            httpx.AsyncClient(base_url=first_server.base_url, transport=transports[0], timeout=10) as first,
            httpx.AsyncClient(base_url=second_server.base_url, transport=transports[1], timeout=10) as second,
        ):
            opening = [await http.get("/probe/burst") for http in (first, second)]
            burst = await asyncio.gather(*(http.get("/probe/burst") for http in (first, second) * 14))
        with client(first_server.base_url, unique_address()) as http:
            logins = [http.post("/auth/login", json={"email": f"u{n}@example.com"}).status_code for n in range(6)]
    answers = opening + list(burst)
    assert [answer.status_code for answer in opening] == [200, 200]
    assert sorted(answer.status_code for answer in answers) == [200] * 20 + [429] * 10
    assert all("RateLimit" in answer.headers for answer in answers)
    assert len({answer.request.url.port for answer in answers if answer.status_code == 200}) == 2
    assert logins == [200] * 5 + [429]

    namespace = project.env["SOKO_QUEUE_NAME"]
    keys = _keys_everywhere(deployment, f"*:{namespace}:ratelimit:*")
    assert keys, "no counter key found"
    assert all(key.startswith(f"{{-}}:{namespace}:ratelimit:") for key in keys), keys


def _keys_everywhere(deployment: RedisDeployment, pattern: str) -> set[str]:
    """`pattern`'s keys on every node (a Cluster spreads them over its primaries; replicas hold copies)."""
    engine = deployment.engine
    servers = engine.nodes.values() if isinstance(engine, RedisClusterEngine) else [engine.primary, engine.replica]
    found: set[str] = set()
    for server in servers:
        with Redis(port=server.port) as redis:
            found |= {key.decode() for key in redis.scan_iter(match=pattern, count=1000)}
    return found


async def test_sigkilled_workers_job_finishes_on_another_and_every_job_runs_once(
    producer: AsyncBroker,
    start_worker: Callable[[str], subprocess.Popen[bytes]],
    tmp_path: Path,
    queue: str,
    deployment: RedisDeployment,
) -> None:
    """Worker A takes a job and is SIGKILLed mid-job; B or C redelivers and finishes it with no new traffic needed.
    Then 30 jobs across B and C each run exactly once."""
    hang_on, append = producer.find_task("soko_test.hang_on"), producer.find_task("soko_test.append")
    assert hang_on is not None and append is not None
    key, record = f"{queue}:job", tmp_path / "runs.txt"
    async with redis_client(deployment.settings) as redis:
        worker_a = start_worker("A")
        await hang_on.kiq(key, hang_on_worker="A")
        await eventually(lambda: redis.lrange(f"{key}:started", 0, -1), timeout=30, what="A to start the job")
        kill_group(worker_a)
        start_worker("B")
        start_worker("C")
        finished = await eventually(
            lambda: redis.lrange(f"{key}:finished", 0, -1), timeout=30, what="the job to finish elsewhere"
        )
        for number in range(30):
            await append.kiq(str(record), f"job-{number}")
        await eventually(lambda: len(_lines(record)) >= 30, timeout=60, what="30 jobs to run")
        started = await redis.lrange(f"{key}:started", 0, -1)
    assert started[0] == b"A" and len(started) == 2 and finished == started[1:], (started, finished)
    assert Counter(_lines(record)) == {f"job-{number}": 1 for number in range(30)}


def _read(path: Path) -> str:
    return path.read_text(errors="replace") if path.exists() else ""


def _lines(path: Path) -> list[str]:
    return _read(path).splitlines()


async def test_daraja_token_and_push_claims_are_shared_by_every_client(deployment: RedisDeployment) -> None:
    """Four processes' worth of clients (one each), 40 callers: one Daraja token fetch, and of 10 concurrent
    claims of one idempotency key exactly one may push. The token's lock and the release script name one key
    each, so a Cluster runs them on that key's node."""
    prefix = f"soko-test-{uuid.uuid4().hex[:8]}"
    fetches = 0

    async def fetch() -> tuple[str, int]:
        nonlocal fetches
        fetches += 1
        await asyncio.sleep(0.2)  # Daraja takes a while: the others must wait for this fetch, not start their own
        return "token-1", 3600

    async with AsyncExitStack() as stack:  # opened as the plugin's lifespan opens its client
        clients = [await stack.enter_async_context(opened(redis_client(deployment.settings))) for _ in range(4)]
        caches = [TokenCache(client, prefix, refresh_early=60, wait=10) for client in clients]
        tokens = await asyncio.gather(*(caches[n % 4].get("consumer-key", fetch) for n in range(40)))
        ledgers = [PushLedger(client, prefix, ttl=60) for client in clients]
        claims = await asyncio.gather(
            *(ledgers[n % 4].claim("tenant", "key-1") for n in range(10)), return_exceptions=True
        )
    assert (fetches, set(tokens)) == (1, {"token-1"})
    assert [claim for claim in claims if not isinstance(claim, PaymentError)] == [None]
    assert all(claim.code is PaymentErrorCode.UNAVAILABLE for claim in claims if isinstance(claim, PaymentError))


async def _noop() -> None:
    """The periodic task of the lock test; only enqueued, never run."""


async def test_periodic_lock_lets_one_of_three_processes_enqueue_per_period(
    deployment: RedisDeployment, queue: str
) -> None:
    """Three kernels (as three processes would) tick a 1 s periodic job: the `SET NX PX` lock lets one enqueue per
    period, so the stream grows by about one job a second, not three."""
    data = {key.removeprefix("SOKO_").lower(): value for key, value in deployment.env.items()} | {"queue_name": queue}
    plugin = SimpleNamespace(register_tasks=hookimpl(lambda: {"tick": _noop}))
    kernels = [build_kernel(RawSettings(Path.cwd(), "test", data), extra_plugins=[("ticking", plugin)]) for _ in "abc"]
    async with AsyncExitStack() as stack, redis_client(deployment.settings) as redis:
        for kernel in kernels:
            kernel.serving = True  # as running(serving=True) sets it in the web app and the worker
            assert kernel.broker is not None
            await kernel.broker.startup()
            stack.push_async_callback(kernel.broker.shutdown)
        started = time.monotonic()
        for kernel in kernels:
            await stack.enter_async_context(periodic(kernel, "ticking.tick", 1.0))
        await eventually(lambda: _at_least(redis.xlen(queue), 4), timeout=30, what="four periods' jobs")
        enqueued, elapsed = await redis.xlen(queue), time.monotonic() - started
    assert enqueued <= elapsed + 1, f"{enqueued} jobs in {elapsed:.1f} s: more than one per period"


async def _at_least(count: Awaitable[int], least: int) -> bool:
    return await count >= least


async def test_primary_killed_mid_run_fails_over_without_restarts(
    project: Project,
    deployment: RedisDeployment,
    producer: AsyncBroker,
    start_worker: Callable[[str], subprocess.Popen[bytes]],
    tmp_path: Path,
    queue: str,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """Requests (rate-limited, failing closed) and enqueues run steadily while the primary holding both the
    counters' slot and the queue's stream is SIGKILLed. Its replica is promoted; the same soko processes serve
    again within RECOVERY_BOUND_S, every failed request is a 503 problem inside the outage, and every job whose
    enqueue was accepted runs."""
    if deployment.kind == "cluster":  # the queue and the counters on one primary: killing it hits both
        assert deployment.primary_of(queue) == deployment.primary_of("{-}"), "fixture picked the queue's slot"
    append = producer.find_task("soko_test.append")
    assert append is not None
    record = tmp_path / "runs.txt"
    start_worker("A")
    start_worker("B")
    outcomes: list[tuple[float, int]] = []
    accepted: list[str] = []
    refused_enqueues = 0
    killed_at = 0.0
    with project.serve() as server, client(server.base_url, unique_address()) as http:
        await _until_serving(server)
        started = time.monotonic()
        for number in itertools.count():
            if not killed_at and time.monotonic() - started > 1.5:
                deployment.kill_primary_of(queue)
                killed_at = time.monotonic()
            status = await asyncio.to_thread(_get, http)
            outcomes.append((time.monotonic(), status))
            try:
                await asyncio.wait_for(append.kiq(str(record), f"job-{number}"), 5)
                accepted.append(f"job-{number}")
            except (SendTaskError, TimeoutError):  # not accepted: the caller knows, and is counted here
                refused_enqueues += 1
            if killed_at and _steady_since_kill(outcomes, killed_at):
                break
            assert not killed_at or time.monotonic() - killed_at < 60, "soko did not recover within 60 s"
            await asyncio.sleep(0.02)
        statuses = Counter(status for _, status in outcomes)
        await _until_serving(server)  # /readyz: the queue's client found the promoted primary too
    await eventually(lambda: set(accepted) <= set(_lines(record)), timeout=60, what="every accepted job to run")

    failed = [(t, s) for t, s in outcomes if s != 200]
    last_failure = max((t for t, _ in failed), default=killed_at)
    serving_again = min(t for t, s in outcomes if s == 200 and t >= last_failure) - killed_at
    runs = Counter(_lines(record))
    with capsys.disabled():
        print(
            f"\n{deployment.kind} failover: {len(outcomes)} requests {dict(statuses)}; serving again "
            f"{serving_again:.2f} s after the kill; {len(accepted)} jobs accepted, {refused_enqueues} enqueues "
            f"refused, every accepted job ran ({sum(count > 1 for count in runs.values())} ran twice)"
        )
    assert set(statuses) <= {200, 503}, statuses  # a failure is a 503 problem, never a 500
    assert all(t >= killed_at for t, _ in failed), "a request failed before the primary was killed"
    assert serving_again < RECOVERY_BOUND_S
    assert statuses[200] > 0 and len(accepted) > 0


def _steady_since_kill(outcomes: list[tuple[float, int]], killed_at: float) -> bool:
    """Requests have succeeded for 2 s since the last failure after the kill (or since the kill, if none failed)."""
    after = [(t, status) for t, status in outcomes if t > killed_at]
    last_failure = max((t for t, status in after if status != 200), default=killed_at)
    return any(status == 200 for t, status in after if t > last_failure) and after[-1][0] - last_failure > 2.0


def _get(http: httpx.Client) -> int:
    return http.get("/probe/steady").status_code


async def _until_serving(server: Running) -> None:
    async with httpx.AsyncClient(base_url=server.base_url) as http:
        await eventually(
            lambda: _ready(http),
            timeout=30,
            what="/readyz to report Redis and the database ready",
        )


async def _ready(http: httpx.AsyncClient) -> bool:
    return (await http.get("/readyz")).status_code == 200
