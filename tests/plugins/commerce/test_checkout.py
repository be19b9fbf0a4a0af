"""Checkout over a real `soko serve`: all lines or none, and never more sold than held, under real concurrency."""

from __future__ import annotations

import asyncio
import json
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
            placed = answer.json()
            token = {"X-Order-Token": placed.pop("access_token")}  # the customer's: see test_order_privacy
            order = (await http.get(f"/orders/{placed['id']}", headers=store.host | token)).json()
            again = await store.checkout(cart, key=str(uuid.uuid4()))
            bad_phone = await store.checkout(await store.cart_with(("chai", 1)), key=str(uuid.uuid4()), phone="12")
    assert answer.status_code == 201, answer.text
    assert order == placed
    assert (order["status"], order["currency"], order["total_minor"]) == ("pending_payment", "KES", 54_500)
    assert order["customer_phone"] == "+254712345678"
    assert [(line["sku"], line["quantity"]) for line in order["lines"]] == [("chai", 2), ("mandazi", 3)]
    assert (again.status_code, again.json()["code"]) == (409, "cart_checked_out")
    assert (bad_phone.status_code, bad_phone.json()["code"]) == (400, "validation_error")


async def test_admin_routes_take_a_staff_sign_in_of_the_store_and_nothing_else(
    shop: Project, new_store: StoreFactory
) -> None:
    with shop.serve() as server:
        async with httpx.AsyncClient(base_url=server.base_url, timeout=30) as http:
            store, other = await new_store(http), await new_store(http)
            body = {"sku": "x", "name": "X", "price_minor": 1}
            anonymous = await http.post("/admin/products", headers=store.host, json=body)
            wrong = await http.post(
                "/admin/products", headers=store.host | {"Authorization": "Bearer wrong"}, json=body
            )
            foreign = await http.post("/admin/products", headers=store.host | other.staff, json=body)
            created = await http.post("/admin/products", headers=store.host | store.staff, json=body)
            restock = await http.put("/admin/products/x/inventory", headers=store.host, json={"on_hand": 100})
            restocked = await http.put(
                "/admin/products/x/inventory", headers=store.host | store.staff, json={"on_hand": 100}
            )
    assert (anonymous.status_code, anonymous.json()["code"]) == (401, "unauthorized")
    assert (wrong.status_code, wrong.json()["code"]) == (401, "unauthorized")
    assert (foreign.status_code, foreign.json()["code"]) == (401, "unauthorized")  # a session of another store
    assert created.status_code == 201, created.text
    assert (restock.status_code, restock.json()["code"]) == (401, "unauthorized")
    assert (restocked.status_code, restocked.json()["on_hand"]) == (200, 100)


async def test_a_cart_line_can_be_changed_or_removed_so_a_short_cart_checks_out(
    shop: Project, new_store: StoreFactory
) -> None:
    with shop.serve() as server:
        async with httpx.AsyncClient(base_url=server.base_url, timeout=30) as http:
            store = await new_store(http)
            await store.add_product("tea", price_minor=100, on_hand=10)
            await store.add_product("gone", price_minor=50, on_hand=0)
            await store.add_product("sugar", price_minor=10, on_hand=10)
            cart = await store.cart_with(("tea", 1), ("gone", 2), ("sugar", 4))
            short = await store.checkout(cart, key=str(uuid.uuid4()))
            more_tea = await http.patch(f"/carts/{cart}/items/tea", headers=store.host, json={"quantity": 3})
            no_gone = await http.patch(f"/carts/{cart}/items/gone", headers=store.host, json={"quantity": 0})
            no_sugar = await http.delete(f"/carts/{cart}/items/sugar", headers=store.host)
            absent = await http.patch(f"/carts/{cart}/items/gone", headers=store.host, json={"quantity": 1})
            absent_delete = await http.delete(f"/carts/{cart}/items/gone", headers=store.host)
            negative = await http.patch(f"/carts/{cart}/items/tea", headers=store.host, json={"quantity": -1})
            placed = await store.checkout(cart, key=str(uuid.uuid4()))
            after = await http.delete(f"/carts/{cart}/items/tea", headers=store.host)
    assert (short.status_code, short.json()["sku"]) == (409, "gone")
    assert [(line["sku"], line["quantity"]) for line in more_tea.json()["items"]] == [
        ("gone", 2),
        ("sugar", 4),
        ("tea", 3),
    ]
    assert [line["sku"] for line in no_gone.json()["items"]] == ["sugar", "tea"]
    assert (no_sugar.status_code, no_sugar.json()["total_minor"]) == (200, 300)
    assert (absent.status_code, absent.json()["code"]) == (404, "cart_item_not_found")
    assert (absent_delete.status_code, absent_delete.json()["code"]) == (404, "cart_item_not_found")
    assert (negative.status_code, negative.json()["code"]) == (400, "validation_error")
    assert (placed.status_code, placed.json()["total_minor"]) == (201, 300), placed.text
    assert (after.status_code, after.json()["code"]) == (409, "cart_checked_out")


def test_soko_products_lists_adds_and_stocks_a_store_catalogue(shop: Project) -> None:
    slug = f"cli{uuid.uuid4().hex[:8]}"
    created = shop.run("tenants", "create", slug, "--name", "CLI shop")
    assert created.returncode == 0, created.stderr
    added = shop.run("products", "add", "--tenant", slug, "mug", "--name", "Mug", "--price-minor", "900")
    stocked = shop.run("products", "stock", "--tenant", slug, "mug", "12")
    listed = shop.run("products", "list", "--tenant", slug, "--json")
    unknown = shop.run("products", "stock", "--tenant", slug, "nothing", "1")
    no_store = shop.run("products", "list", "--tenant", "no-such-shop")
    assert added.returncode == 0, added.stderr
    assert "mug" in added.stdout and "on hand 0" in added.stdout
    assert stocked.returncode == 0, stocked.stderr
    assert [(p["sku"], p["price_minor"], p["on_hand"]) for p in json.loads(listed.stdout)] == [("mug", 900, 12)]
    assert (unknown.returncode, unknown.stderr.strip()) == (
        1,
        "Error: product_not_found: No product has the SKU 'nothing'.",
    )
    assert no_store.returncode == 1 and "tenant_not_found" in no_store.stderr
