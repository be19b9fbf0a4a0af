"""Checkout over a real `soko serve`: all lines or none, and never more sold than held, under real concurrency."""

from __future__ import annotations

import asyncio
import uuid

import asyncpg
import httpx
import pytest

from kernel.testing.project import Project
from tests.plugins.commerce.conftest import StoreFactory, count_orders

CONCURRENT = 50
IN_STOCK = 7


@pytest.mark.parametrize("processes", [1, 2])
async def test_fifty_concurrent_checkouts_sell_exactly_what_is_in_stock(
    shop: Project, new_store: StoreFactory, superuser: asyncpg.Connection, processes: int
) -> None:
    with shop.serve("--workers", str(processes)) as server:
        async with httpx.AsyncClient(base_url=server.base_url, timeout=30) as http:
            store = await new_store(http)
            await store.add_product("kanga", on_hand=IN_STOCK)
            carts = [await store.cart_with(("kanga", 1)) for _ in range(CONCURRENT)]
            answers = await asyncio.gather(*(store.checkout(cart, key=str(uuid.uuid4())) for cart in carts))
            product = await store.product("kanga")
    statuses = sorted(answer.status_code for answer in answers)
    assert statuses == [201] * IN_STOCK + [409] * (CONCURRENT - IN_STOCK)
    assert {answer.json()["code"] for answer in answers if answer.status_code == 409} == {"out_of_stock"}
    assert (product["on_hand"], product["reserved"], product["available"]) == (IN_STOCK, IN_STOCK, 0)
    assert await count_orders(superuser, store) == IN_STOCK


async def test_a_checkout_whose_second_line_is_short_reserves_nothing(
    shop: Project, new_store: StoreFactory, superuser: asyncpg.Connection
) -> None:
    with shop.serve() as server:
        async with httpx.AsyncClient(base_url=server.base_url, timeout=30) as http:
            store = await new_store(http)
            await store.add_product("a-plenty", on_hand=10)
            await store.add_product("b-scarce", on_hand=1)
            cart = await store.cart_with(("a-plenty", 3), ("b-scarce", 2))
            answer = await store.checkout(cart, key=str(uuid.uuid4()))
            plenty, scarce = await store.product("a-plenty"), await store.product("b-scarce")
            cart_after = (await http.get(f"/carts/{cart}", headers=store.host)).json()
    assert answer.status_code == 409
    assert answer.json()["code"] == "out_of_stock"
    assert answer.json()["sku"] == "b-scarce"
    assert (plenty["reserved"], scarce["reserved"]) == (0, 0)
    assert cart_after["status"] == "open"  # the whole checkout rolled back, the cart with it
    assert await count_orders(superuser, store) == 0


async def test_checkout_opens_a_pending_order_with_its_total_and_an_e164_phone(
    shop: Project, new_store: StoreFactory
) -> None:
    with shop.serve() as server:
        async with httpx.AsyncClient(base_url=server.base_url, timeout=30) as http:
            store = await new_store(http)
            await store.add_product("chai", price_minor=25_000, on_hand=5)
            await store.add_product("mandazi", price_minor=1_500, on_hand=5)
            cart = await store.cart_with(("chai", 2), ("mandazi", 3))
            answer = await store.checkout(cart, key=str(uuid.uuid4()), phone="0712 345 678")
            order = (await http.get(f"/orders/{answer.json()['id']}", headers=store.host)).json()
            again = await store.checkout(cart, key=str(uuid.uuid4()))
            bad_phone = await store.checkout(await store.cart_with(("chai", 1)), key=str(uuid.uuid4()), phone="12")
    assert answer.status_code == 201, answer.text
    assert order == answer.json()
    assert (order["status"], order["currency"], order["total_minor"]) == ("pending_payment", "KES", 54_500)
    assert order["customer_phone"] == "+254712345678"
    assert [(line["sku"], line["quantity"]) for line in order["lines"]] == [("chai", 2), ("mandazi", 3)]
    assert (again.status_code, again.json()["code"]) == (409, "cart_checked_out")
    assert (bad_phone.status_code, bad_phone.json()["code"]) == (400, "validation_error")


async def test_admin_routes_refuse_without_the_staff_token(shop: Project, new_store: StoreFactory) -> None:
    with shop.serve() as server:
        async with httpx.AsyncClient(base_url=server.base_url, timeout=30) as http:
            store = await new_store(http)
            body = {"sku": "x", "name": "X", "price_minor": 1}
            anonymous = await http.post("/admin/products", headers=store.host, json=body)
            wrong = await http.post(
                "/admin/products", headers=store.host | {"Authorization": "Bearer wrong"}, json=body
            )
            await store.add_product("x", on_hand=1)
            restock = await http.put("/admin/products/x/inventory", headers=store.host, json={"on_hand": 100})
    assert (anonymous.status_code, anonymous.json()["code"]) == (401, "unauthorized")
    assert (wrong.status_code, wrong.json()["code"]) == (401, "unauthorized")
    assert (restock.status_code, restock.json()["code"]) == (401, "unauthorized")


async def test_admin_routes_are_closed_when_no_token_is_configured(shop: Project, new_store: StoreFactory) -> None:
    shop.env.pop("SOKO_PLUGINS__COMMERCE__ADMIN_TOKEN")
    with shop.serve() as server:
        async with httpx.AsyncClient(base_url=server.base_url, timeout=30) as http:
            store = await new_store(http)
            answer = await http.post(
                "/admin/products",
                headers=store.host | {"Authorization": "Bearer anything-at-all"},
                json={"sku": "x", "name": "X", "price_minor": 1},
            )
    assert (answer.status_code, answer.json()["code"]) == (403, "forbidden")
