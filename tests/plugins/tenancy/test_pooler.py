"""The leak test through PgBouncer in transaction mode (`SOKO_DATABASE_POOLER=transaction`), with fewer server
connections than the clients that share them: two serving processes of 4 pooled connections each (8 clients of
PgBouncer, hundreds of HTTP clients) on 2 server connections.

Behind such a pooler a server connection is one client's only inside a transaction; anything that outlived one
(a session setting, a prepared statement) would reach another client. soko sets the tenant with
`set_config(..., true)` (transaction-local) and, with the setting, prepares no named statements, so >= 10,000 mixed
requests of two tenants (reads, writes, failures after writing, clients that give up mid-transaction) see 0 foreign
rows. The same load's throughput is measured direct and through PgBouncer, side by side.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections import Counter
from collections.abc import Iterator

import asyncpg
import httpx
import pytest

from kernel.testing.engines import PgBouncerEngine, pgbouncer
from kernel.testing.project import Project, eventually
from kernel.testing.services import APP_PASSWORD, APP_ROLE, Database
from tests.plugins.tenancy.conftest import POOL_MAX, TenantRow, create_tenant
from tests.plugins.tenancy.test_leak import SERVER_BACKENDS, Load, Planned, send

SERVER_CONNECTIONS = 2
WEB_PROCESSES = 2
MIX = {"read": 70, "write": 10, "fail": 20}  # per 100 requests
REQUESTS = 4_000
CANCELLED = 10  # clients that give up while their transaction sleeps, each holding one of the 2 server connections
CONCURRENCY = 200
THROUGHPUT_REQUESTS = 600


@pytest.fixture(scope="module")
def bouncer(migrated: Database) -> Iterator[PgBouncerEngine]:
    with pgbouncer(migrated.app_url, pool_size=SERVER_CONNECTIONS, users={APP_ROLE: APP_PASSWORD}) as engine:
        yield engine


def _plan(tenants: list[TenantRow], requests: int, cancelled: int, seed: int) -> list[Planned]:
    kinds = [kind for kind, share in MIX.items() for _ in range(share)]
    chooser = random.Random(seed)
    plan = [(chooser.choice(kinds), chooser.choice(tenants)) for _ in range(requests - cancelled)]
    plan += [("cancel", tenants[n % len(tenants)]) for n in range(cancelled)]
    chooser.shuffle(plan)
    return [Planned(number, kind, tenant) for number, (kind, tenant) in enumerate(plan)]


async def _run(base_url: str, planned: list[Planned]) -> tuple[Counter[str], Load, float]:
    """Every planned request, at most CONCURRENCY at once; the outcomes, the load seen and the seconds taken."""
    load, start = Load(), asyncio.Event()
    start.set()
    todo: asyncio.Queue[Planned] = asyncio.Queue()
    for item in planned:
        todo.put_nowait(item)
    outcomes: Counter[str] = Counter()
    limits = httpx.Limits(max_connections=CONCURRENCY, max_keepalive_connections=CONCURRENCY)

    async with httpx.AsyncClient(base_url=base_url, limits=limits, timeout=60) as http:

        async def client() -> None:
            while not todo.empty():
                outcomes[await send(http, todo.get_nowait(), start, load)] += 1

        began = time.monotonic()
        await asyncio.gather(*(client() for _ in range(CONCURRENCY)))
        return outcomes, load, time.monotonic() - began


BACKENDS = f"SELECT pid FROM pg_stat_activity WHERE {SERVER_BACKENDS}"


async def _most_server_connections(superuser: asyncpg.Connection, earlier: set[int], stop: asyncio.Event) -> int:
    """The most app-role backends seen at once that were not there before the run: PgBouncer's."""
    seen = 0
    while not stop.is_set():
        seen = max(seen, len({row["pid"] for row in await superuser.fetch(BACKENDS)} - earlier))
        await asyncio.sleep(0.05)
    return seen


async def test_no_tenant_sees_another_through_pgbouncer_in_transaction_mode(
    project: Project,
    bouncer: PgBouncerEngine,
    superuser: asyncpg.Connection,
    capsys: pytest.CaptureFixture[str],
) -> None:
    tenants = [await create_tenant(superuser, items=5) for _ in range(2)]
    project.env |= {
        "SOKO_DATABASE_URL": bouncer.url(project.env["SOKO_DATABASE_URL"]),
        "SOKO_DATABASE_POOLER": "transaction",
    }
    planned = _plan(tenants, REQUESTS, CANCELLED, seed=20261203)
    # Backends of the app role already there (other tests' connections, idle) are not PgBouncer's.
    earlier = {row["pid"] for row in await superuser.fetch(BACKENDS)}
    with project.serve("--workers", str(WEB_PROCESSES)) as server:
        stop = asyncio.Event()
        watcher = asyncio.create_task(_most_server_connections(superuser, earlier, stop))
        outcomes, load, seconds = await _run(server.base_url, planned)
        stop.set()
        most_backends = await watcher
        # The clients that gave up: their transactions were cancelled through PgBouncer, none sleeps on.
        lingering = (
            f"SELECT pid FROM pg_stat_activity WHERE {SERVER_BACKENDS}"
            " AND (state LIKE 'idle in transaction%' OR query LIKE '%pg_sleep%' AND state = 'active')"
        )
        await eventually(
            lambda: _none(superuser, lingering), timeout=10, what="every cancelled request's transaction to end"
        )

    expected_outcomes = Counter(
        {"read": "read", "write": "written", "fail": "failed after writing", "cancel": "cancelled by the client"}[
            item.kind
        ]
        for item in planned
    )
    assert outcomes == expected_outcomes
    assert most_backends <= SERVER_CONNECTIONS < WEB_PROCESSES * POOL_MAX < load.max_in_flight
    rows = await superuser.fetch(
        "SELECT body, tenant_id::text AS tenant_id FROM tenantprobe_items WHERE tenant_id = ANY($1::uuid[])",
        [tenant.id for tenant in tenants],
    )
    stored = {row["body"]: row["tenant_id"] for row in rows}
    expected = {item.body: item.tenant.id for item in planned if item.kind == "write"}
    expected |= {f"{tenant.slug}-seed-{n}": tenant.id for tenant in tenants for n in range(5)}
    assert stored == expected  # only the successful writes, each under its own tenant
    with capsys.disabled():
        print(
            f"\npgbouncer leak test: {len(planned)} requests in {seconds:.1f} s ({len(planned) / seconds:.0f}/s), "
            f"{WEB_PROCESSES} processes x {POOL_MAX} pooled connections on {most_backends} server connections "
            f"(at most {SERVER_CONNECTIONS}), {load.max_in_flight} in flight; {dict(outcomes)}; "
            f"{load.rows_read} rows read, 0 foreign"
        )


async def test_throughput_direct_and_through_pgbouncer(
    project: Project, bouncer: PgBouncerEngine, superuser: asyncpg.Connection, capsys: pytest.CaptureFixture[str]
) -> None:
    """The same mixed load (no cancellations) direct and through PgBouncer: both complete with 0 foreign rows;
    the rates are printed for benchmarks/RESULTS.md, not asserted (speed is measured, never a test's verdict)."""
    tenants = [await create_tenant(superuser, items=5) for _ in range(2)]
    direct = project.env["SOKO_DATABASE_URL"]
    rates = {}
    for name, env in {
        "direct": {"SOKO_DATABASE_URL": direct},
        "pgbouncer": {"SOKO_DATABASE_URL": bouncer.url(direct), "SOKO_DATABASE_POOLER": "transaction"},
    }.items():
        planned = _plan(tenants, THROUGHPUT_REQUESTS, 0, seed=7)
        with project.serve("--workers", str(WEB_PROCESSES), **env) as server:
            outcomes, _, seconds = await _run(server.base_url, planned)
        assert sum(outcomes.values()) == THROUGHPUT_REQUESTS
        rates[name] = THROUGHPUT_REQUESTS / seconds
    with capsys.disabled():
        print(
            f"\nthroughput, {THROUGHPUT_REQUESTS} mixed requests, {WEB_PROCESSES} processes: direct "
            f"{rates['direct']:.0f}/s, through pgbouncer ({SERVER_CONNECTIONS} server connections) "
            f"{rates['pgbouncer']:.0f}/s"
        )


async def _none(superuser: asyncpg.Connection, query: str) -> bool:
    return not await superuser.fetch(query)
