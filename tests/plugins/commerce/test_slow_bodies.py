"""Slow request bodies hold nothing (issue 13, item 1): 200 clients trickle a POST body one byte every 3 s into 2
server processes while normal shop traffic goes on; every normal request is answered, no database transaction
sits idle waiting for a body, and every slow client gets 408 `request_timeout` once `body_timeout` (10 s) is up.

On a kernel that opens the tenant transaction before the body is read, the slow clients hold the whole pool and
the normal requests wait until the body timeout: they fail here by their client timeout. How fast the normal
requests are meanwhile (p99) is the benchmark's to measure (benchmarks/bench_slow_bodies.py); printed here too.
"""

from __future__ import annotations

import itertools

import asyncpg
import httpx

from kernel.testing import slow_bodies
from kernel.testing.project import Project
from kernel.testing.services import APP_ROLE
from tests.plugins.commerce.conftest import POOL_MAX, StoreFactory

NORMAL_TIMEOUT_S = 5.0  # a normal request not answered in this long counts as a failure


async def test_slow_bodies_hold_no_connection_while_normal_requests_are_served(
    shop: Project, new_store: StoreFactory, superuser: asyncpg.Connection
) -> None:
    with shop.serve("--workers", "2") as server:
        async with httpx.AsyncClient(base_url=server.base_url, timeout=NORMAL_TIMEOUT_S) as http:
            store = await new_store(http)
            await store.add_product("kikoi", on_hand=100)
            requests = itertools.cycle([("POST", "/carts", {}), ("GET", "/products", None)])

            async def normal() -> httpx.Response:
                method, path, body = next(requests)
                return await http.request(method, path, headers=store.host, json=body)

            attack = slow_bodies.Attack(server.base_url, store.host["Host"])
            outcome = await slow_bodies.run(
                attack, normal, normal_clients=8, normal_for_s=8.0, observer=superuser, app_role=APP_ROLE
            )
    print(f"\nslow bodies: {attack.clients} slow clients on 2 processes (pool {POOL_MAX} each); {outcome.summary()}")
    assert outcome.failures == []
    assert len(outcome.latencies) > 100
    assert max(outcome.held) == 0, f"transactions idle while bodies trickled in: {outcome.held}"
    assert outcome.answers == [(408, "request_timeout")] * attack.clients
