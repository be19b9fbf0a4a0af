"""One key, many concurrent requests, one or two server processes: the effect happens exactly once."""

from __future__ import annotations

import asyncio
import uuid

import asyncpg
import httpx
import pytest

from kernel.testing.project import Project
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
    in_progress = [answer for answer in answers if answer.status_code == 409]
    assert len(created) == 1
    assert len(created) + len(replayed) + len(in_progress) == CONCURRENT
    assert {answer.json()["code"] for answer in in_progress} <= {"idempotency_key_in_progress"}
    assert all(answer.headers["Retry-After"] == "1" for answer in in_progress)
    assert all((answer.status_code, answer.json()) == (201, created[0].json()) for answer in replayed)
    assert (replay.status_code, replay.headers["Idempotent-Replayed"]) == (201, "true")
    assert replay.json() == created[0].json()
    assert await count_orders(superuser, store) == 1
    assert product["reserved"] == 1
