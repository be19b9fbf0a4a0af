"""The leak test: two tenants' requests at once against a real server whose pool is smaller than the load,
with writes, failures after writing and clients that give up mid-transaction. Nothing may cross over, and every
pooled connection must come back with no tenant set.
"""

from __future__ import annotations

import asyncio
import random
from collections import Counter
from collections.abc import Awaitable
from dataclasses import dataclass

import asyncpg
import httpx
import pytest

from kernel.testing.project import Project, eventually
from tests.plugins.tenancy.conftest import POOL_MAX, TenantRow, create_tenant

PER_TENANT = {"read": 75, "write": 15, "fail": 15, "cancel": 15}  # 240 requests in all, released at once
# The server's connections: the app role's, to this database (other sessions may use the same role elsewhere).
SERVER_BACKENDS = "usename = 'soko_app' AND datname = current_database()"
HOLD_S = 30  # a cancelled request's transaction would sleep this long if the server did not notice the client left
CLIENT_GIVES_UP_S = 0.5
SEED_ROWS = 5


@dataclass(frozen=True)
class Planned:
    number: int
    kind: str
    tenant: TenantRow

    @property
    def body(self) -> str:
        return f"{self.tenant.slug}-{self.kind}-{self.number}"


@dataclass
class Load:
    """What the clients saw, and how many requests were in flight at most."""

    in_flight: int = 0
    max_in_flight: int = 0
    rows_read: int = 0
    outcomes: Counter[str] | None = None


async def send(http: httpx.AsyncClient, planned: Planned, start: asyncio.Event, load: Load) -> str:
    """One request; returns what happened to it. Reads are checked for foreign rows right here."""
    await start.wait()
    load.in_flight += 1
    load.max_in_flight = max(load.max_in_flight, load.in_flight)
    headers = {"Host": planned.tenant.host}
    try:
        if planned.kind == "read":
            response = await http.get("/probe/items", headers=headers)
            assert response.status_code == 200, response.text
            document = response.json()
            assert document["tenant"] == planned.tenant.id
            foreign = [row for row in document["items"] if row["tenant_id"] != planned.tenant.id]
            assert foreign == [], f"{planned.tenant.slug} was shown another tenant's rows: {foreign}"
            assert all(row["body"].startswith(planned.tenant.slug) for row in document["items"])
            assert len(document["items"]) >= SEED_ROWS
            load.rows_read += len(document["items"])
            return "read"
        params = {"body": planned.body} | {"fail": {"fail": "1"}, "cancel": {"hold": str(HOLD_S)}}.get(planned.kind, {})
        timeout = httpx.Timeout(60, read=CLIENT_GIVES_UP_S if planned.kind == "cancel" else 60)
        try:
            response = await http.post("/probe/items", params=params, headers=headers, timeout=timeout)
        except httpx.ReadTimeout:
            assert planned.kind == "cancel"
            return "cancelled by the client"
        if planned.kind == "fail":
            assert response.status_code == 500
            assert response.json()["code"] == "internal_error"
            return "failed after writing"
        assert (planned.kind, response.status_code) == ("write", 201), response.text
        return "written"
    finally:
        load.in_flight -= 1


async def watch_held_transactions(superuser: asyncpg.Connection, stop: asyncio.Event) -> int:
    """The most app-role backends seen sleeping inside a transaction that already wrote: cancellations to come."""
    seen = 0
    while not stop.is_set():
        sleeping = await superuser.fetchval(
            f"SELECT count(*) FROM pg_stat_activity WHERE {SERVER_BACKENDS} AND query LIKE '%pg_sleep%'"
            " AND state = 'active' AND backend_xid IS NOT NULL"
        )
        seen = max(seen, sleeping)
        await asyncio.sleep(0.01)
    return seen


async def test_concurrent_tenants_never_see_each_other(
    project: Project, superuser: asyncpg.Connection, capsys: pytest.CaptureFixture[str]
) -> None:
    tenants = [await create_tenant(superuser, items=SEED_ROWS) for _ in range(2)]
    plan = [(kind, tenant) for tenant in tenants for kind, count in PER_TENANT.items() for _ in range(count)]
    random.Random(20261128).shuffle(plan)
    planned = [Planned(number, kind, tenant) for number, (kind, tenant) in enumerate(plan)]
    assert len(planned) >= 200 > POOL_MAX

    load = Load()
    with project.serve() as server:
        limits = httpx.Limits(max_connections=len(planned), max_keepalive_connections=len(planned))
        async with httpx.AsyncClient(base_url=server.base_url, limits=limits, timeout=60) as http:
            start, stop = asyncio.Event(), asyncio.Event()
            watcher = asyncio.create_task(watch_held_transactions(superuser, stop))
            requests = [asyncio.create_task(send(http, item, start, load)) for item in planned]
            await asyncio.sleep(0)
            start.set()
            outcomes = Counter(await asyncio.gather(*requests))
            stop.set()
            held_at_once = await watcher

            # The server noticed every client that left: no transaction sleeps on, none is left open.
            lingering = (
                f"SELECT pid, state, query FROM pg_stat_activity WHERE {SERVER_BACKENDS}"
                " AND (state LIKE 'idle in transaction%' OR query LIKE '%pg_sleep%' AND state = 'active')"
            )
            await eventually(
                lambda: _none(superuser.fetch(lingering)),
                timeout=10,
                what="every cancelled request's transaction to end",
            )
            pool = (await http.get("/probe/pool")).json()["connections"]

    assert outcomes == {
        "read": 2 * PER_TENANT["read"],
        "written": 2 * PER_TENANT["write"],
        "failed after writing": 2 * PER_TENANT["fail"],
        "cancelled by the client": 2 * PER_TENANT["cancel"],
    }
    assert load.max_in_flight >= 200
    assert held_at_once >= 1, "no request was cancelled while its transaction held a write"

    # Only successful writes exist, each under its own tenant; failed and cancelled ones were rolled back.
    rows = await superuser.fetch(
        "SELECT body, tenant_id::text AS tenant_id FROM tenantprobe_items WHERE tenant_id = ANY($1::uuid[])",
        [tenant.id for tenant in tenants],
    )
    stored = {row["body"]: row["tenant_id"] for row in rows}
    expected = {item.body: item.tenant.id for item in planned if item.kind == "write"}
    expected |= {f"{tenant.slug}-seed-{n}": tenant.id for tenant in tenants for n in range(SEED_ROWS)}
    assert stored == expected

    # Every connection of the server's pool, held at once: none is in a transaction or has a tenant set.
    assert len(pool) == POOL_MAX
    assert len({connection["pid"] for connection in pool}) == POOL_MAX
    assert [(c["tenant"] or "", c["in_transaction"]) for c in pool] == [("", False)] * POOL_MAX
    with capsys.disabled():
        print(
            f"\nleak test: {len(planned)} requests, {load.max_in_flight} in flight at most, pool of {POOL_MAX}; "
            f"{dict(outcomes)}; {load.rows_read} rows read, 0 foreign; {held_at_once} transactions held at once "
            f"by requests later cancelled; {len(pool)} pooled connections clean"
        )


async def _none(rows: Awaitable[list[asyncpg.Record]]) -> bool:
    found = await rows
    if found:
        print(f"still open: {[dict(row) for row in found]}")
    return not found
