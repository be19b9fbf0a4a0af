"""One key, many concurrent requests, one or two server processes: the effect happens exactly once."""

from __future__ import annotations

import asyncio
import uuid

import asyncpg
import httpx
import pytest

from kernel.testing.project import Project, eventually
from tests.plugins.commerce.conftest import StoreFactory, count_orders

CONCURRENT = 20


@pytest.mark.parametrize("processes", [1, 2])
async def test_twenty_concurrent_requests_with_one_key_make_one_order(
    shop: Project, new_store: StoreFactory, superuser: asyncpg.Connection, processes: int
) -> None:
    key = str(uuid.uuid4())
    with shop.serve("--workers", str(processes)) as server:
        async with httpx.AsyncClient(base_url=server.base_url, timeout=30) as http:
            store = await new_store(http)
            await store.add_product("kikoi", on_hand=100)
            cart = await store.cart_with(("kikoi", 1))
            answers = await asyncio.gather(*(store.checkout(cart, key=key) for _ in range(CONCURRENT)))
            replay = await store.checkout(cart, key=key)
            product = await store.product("kikoi")
    created = [
        answer for answer in answers if answer.status_code == 201 and "Idempotent-Replayed" not in answer.headers
    ]
    replayed = [answer for answer in answers if answer.headers.get("Idempotent-Replayed") == "true"]
    assert len(created) == 1
    # The repeats waited for the first request (wait_seconds) instead of answering 409 in progress.
    assert len(replayed) == CONCURRENT - 1, [(answer.status_code, answer.text) for answer in answers]
    assert all((answer.status_code, answer.json()) == (201, created[0].json()) for answer in replayed)
    assert (replay.status_code, replay.headers["Idempotent-Replayed"]) == (201, "true")
    assert replay.json() == created[0].json()
    assert await count_orders(superuser, store) == 1
    assert product["reserved"] == 1


async def test_a_repeat_waits_for_the_first_request_and_answers_409_in_progress_past_wait_seconds(
    shop: Project, new_store: StoreFactory, superuser: asyncpg.Connection
) -> None:
    key = str(uuid.uuid4())
    with shop.serve(SOKO_PLUGINS__IDEMPOTENCY__WAIT_SECONDS="0.5") as server:
        async with httpx.AsyncClient(base_url=server.base_url, timeout=30) as http:
            store = await new_store(http)
            await store.add_product("kikoi", on_hand=5)
            cart = await store.cart_with(("kikoi", 1))
            async with superuser.transaction():  # holds the first checkout inside its view, at the stock
                await superuser.execute(
                    "SELECT 1 FROM inventory WHERE tenant_id = $1::uuid FOR UPDATE", store.tenant_id
                )
                first = asyncio.create_task(store.checkout(cart, key=key))

                holder = await superuser.fetchval("SELECT pg_backend_pid()")

                async def first_is_held() -> bool:
                    return bool(
                        await superuser.fetchval(
                            "SELECT count(*) FROM pg_stat_activity WHERE $1 = ANY(pg_blocking_pids(pid))", holder
                        )
                    )

                await eventually(first_is_held, timeout=20, what="the first checkout to wait for the stock")
                repeat = await store.checkout(cart, key=key)
            created = await first
            replay = await store.checkout(cart, key=key)
    assert (repeat.status_code, repeat.json()["code"]) == (409, "idempotency_key_in_progress"), repeat.text
    assert repeat.headers["Retry-After"] == "1"
    assert created.status_code == 201, created.text
    assert (replay.status_code, replay.headers["Idempotent-Replayed"]) == (201, "true")
    assert replay.json() == created.json()
    assert await count_orders(superuser, store) == 1
