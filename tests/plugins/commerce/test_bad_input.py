"""Bad input is the client's mistake, never a 500 (issue 13, item 7), against a real `soko serve` running the shop
with rate limiting and idempotency, whose middleware reads the body before the view does.

Deep nesting (the parser recurses), a lone UTF-16 surrogate (a str that cannot be encoded), a Host no IDNA codec
accepts and carts whose totals would overflow `bigint` each get a 4xx problem with a stable code, and the server
logs no traceback for any of them.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import httpx
import pytest

from kernel.testing.project import Project, Running, eventually
from tests.plugins.commerce.conftest import ENABLED, Store, StoreFactory

ROUTES = ["/carts", "/auth/otp/request", "/auth/login", "/checkout"]
DEEP = "[" * 1000 + "]" * 1000
JUST_TOO_DEEP = '{"a": ' + "[" * 32 + "]" * 32 + "}"  # 33 levels: one more than `max_json_depth`
SURROGATE_FIELDS = {
    "/carts": "currency",
    "/auth/otp/request": "phone",
    "/auth/login": "email",
    "/checkout": "cart_id",
}
LARGEST_PRICE = 10**12  # what the admin schema allows
MAX_ADD = 10_000  # the most one add may ask for


@pytest.fixture
def server(shop: Project) -> Iterator[Running]:
    shop.settings([*ENABLED, "ratelimit"], database_pool_max=5)
    with shop.serve() as running:
        yield running


def post_raw(store: Store, path: str, body: str) -> httpx.Response:
    headers = store.host | {"Content-Type": "application/json", "Idempotency-Key": str(uuid.uuid4())}
    return httpx.post(f"{store.http.base_url}{path}", headers=headers, content=body.encode(), timeout=30)


def assert_refused(response: httpx.Response, status: int, code: str) -> None:
    assert response.headers["content-type"] == "application/problem+json", response.text
    assert (response.status_code, response.json()["code"]) == (status, code), response.text


def assert_no_traceback(server: Running) -> None:
    errors = [record for record in server.log_records() if record.get("level") in ("ERROR", "CRITICAL")]
    assert errors == []
    assert "Traceback" not in server.log()


@pytest.mark.parametrize("body", [DEEP, JUST_TOO_DEEP], ids=["1000-deep", "33-deep"])
async def test_bodies_nested_too_deep_are_400_on_every_route(
    server: Running, new_store: StoreFactory, body: str
) -> None:
    async with httpx.AsyncClient(base_url=server.base_url, timeout=30) as http:
        store = await new_store(http)
        for path in ROUTES:
            assert_refused(post_raw(store, path, body), 400, "validation_error")
        fine = await http.post("/carts", headers=store.host, json={"currency": "KES"})
    assert fine.status_code == 201, fine.text
    assert_no_traceback(server)


async def test_a_lone_surrogate_is_400_on_every_route(server: Running, new_store: StoreFactory) -> None:
    async with httpx.AsyncClient(base_url=server.base_url, timeout=30) as http:
        store = await new_store(http)
        for path, field in SURROGATE_FIELDS.items():
            extra = ', "customer_phone": "0712345678"' if path == "/checkout" else ""
            assert_refused(post_raw(store, path, f'{{"{field}": "\\udc00"{extra}}}'), 400, "validation_error")
        paired = post_raw(store, "/auth/otp/request", '{"phone": "\\ud83d\\ude00"}')  # a valid pair: an emoji
    assert_refused(paired, 400, "validation_error")  # refused for not being a phone number, by the view
    assert "errors" in paired.json()
    assert_no_traceback(server)


async def test_a_host_no_codec_accepts_is_400_invalid_host_with_an_access_line(server: Running) -> None:
    for host in ("alpha..localhost", ".localhost"):
        response = httpx.get(f"{server.base_url}/products", headers={"Host": host}, timeout=30)
        assert_refused(response, 400, "invalid_host")
    assert_no_traceback(server)

    def refused_lines() -> list[int]:  # access lines are written in batches: wait for them
        access = [record for record in server.log_records() if record.get("logger") == "soko.access"]
        return [record["status"] for record in access if record.get("method") == "GET" and not record.get("route")]

    assert await eventually(lambda: len(refused_lines()) >= 2, timeout=10, what="the access lines")
    assert refused_lines() == [400, 400]


async def test_cart_lines_and_totals_are_capped_so_nothing_overflows_bigint(
    server: Running, new_store: StoreFactory
) -> None:
    async with httpx.AsyncClient(base_url=server.base_url, timeout=30) as http:
        store = await new_store(http)
        await store.add_product("lulu", price_minor=1, on_hand=10**9)
        await store.add_product("almasi", price_minor=LARGEST_PRICE, on_hand=10**9)
        cart = await store.cart_with(("lulu", MAX_ADD))
        one_more = await http.post(f"/carts/{cart}/items", headers=store.host, json={"sku": "lulu", "quantity": 1})
        patched = await http.patch(f"/carts/{cart}/items/lulu", headers=store.host, json={"quantity": MAX_ADD})
        answers = [
            await http.post(f"/carts/{cart}/items", headers=store.host, json={"sku": "almasi", "quantity": MAX_ADD})
            for _ in range(3)
        ]
        single = await http.post(f"/carts/{cart}/items", headers=store.host, json={"sku": "almasi", "quantity": 1})
        held = (await http.get(f"/carts/{cart}", headers=store.host)).json()
        order = await store.checkout(cart, key=str(uuid.uuid4()))
    assert_refused(one_more, 409, "line_quantity_exceeded")
    assert patched.status_code == 200, patched.text
    for answer in answers:
        assert_refused(answer, 409, "order_total_exceeded")
    assert single.status_code == 201, single.text
    assert held["total_minor"] == MAX_ADD + LARGEST_PRICE
    assert (order.status_code, order.json()["total_minor"]) == (201, MAX_ADD + LARGEST_PRICE), order.text
    assert_no_traceback(server)
