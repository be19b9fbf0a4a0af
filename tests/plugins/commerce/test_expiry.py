"""Unpaid orders expire through the real worker and give their stock back; paying turns stock into a sale."""

from __future__ import annotations

import os
import uuid

import asyncpg
import httpx
import pytest

from kernel.kernel import build_kernel
from kernel.settings import load_raw
from kernel.testing.project import Project, eventually
from plugins.commerce.public import PaidOutcome, mark_order_paid
from tests.plugins.commerce.conftest import StoreFactory


async def test_an_expired_reservation_returns_its_stock_through_the_worker(
    shop: Project, new_store: StoreFactory
) -> None:
    shop.plugin_config("commerce", {"reservation_ttl_seconds": 1, "expiry_interval_seconds": 0.2})
    with shop.worker(), shop.serve() as server:
        async with httpx.AsyncClient(base_url=server.base_url, timeout=30) as http:
            store = await new_store(http)
            await store.add_product("shuka", on_hand=3)
            order = (await store.checkout(await store.cart_with(("shuka", 2)), key=str(uuid.uuid4()))).json()
            reserved_at_checkout = (await store.product("shuka"))["reserved"]

            async def expired() -> bool:
                answer = await http.get(f"/orders/{order['id']}", headers=store.host | store.staff)
                return answer.json()["status"] == "expired"

            await eventually(expired, timeout=20, what="the worker to expire the order")
            product = await store.product("shuka")
    assert (order["status"], reserved_at_checkout) == ("pending_payment", 2)
    assert (product["on_hand"], product["reserved"]) == (3, 0)


async def test_mark_order_paid_sells_the_reserved_stock_once(
    shop: Project, new_store: StoreFactory, superuser: asyncpg.Connection, monkeypatch: pytest.MonkeyPatch
) -> None:
    with shop.serve() as server:
        async with httpx.AsyncClient(base_url=server.base_url, timeout=30) as http:
            store = await new_store(http)
            await store.add_product("kitenge", on_hand=5)
            order = (await store.checkout(await store.cart_with(("kitenge", 2)), key=str(uuid.uuid4()))).json()
    for name in [key for key in os.environ if key.startswith("SOKO_")]:
        monkeypatch.delenv(name)
    for name, value in shop.environment().items():
        if name.startswith("SOKO_"):
            monkeypatch.setenv(name, value)
    kernel = build_kernel(load_raw(shop.root))
    outcomes = []
    async with kernel.running():
        for reference in ("mpesa-1", "mpesa-1-again", "x"):
            async with kernel.tenant_transaction(store.tenant_id):
                target = order["id"] if reference != "x" else "not-an-order"
                outcomes.append(await mark_order_paid(kernel, target, reference))
    row = await superuser.fetchrow(
        "SELECT o.status, o.payment_reference, i.on_hand, i.reserved FROM orders o "
        "JOIN order_lines l ON l.order_id = o.id JOIN inventory i ON i.product_id = l.product_id WHERE o.id = $1",
        uuid.UUID(order["id"]),
    )
    assert outcomes == [PaidOutcome.PAID, PaidOutcome.ALREADY_PAID, PaidOutcome.NOT_FOUND]
    assert dict(row) == {"status": "paid", "payment_reference": "mpesa-1", "on_hand": 3, "reserved": 0}
