"""Idempotency-Key semantics over a real `soko serve`: mismatch, missing, malformed, tenants, failures, replay."""

from __future__ import annotations

import uuid

import asyncpg
import httpx
import pytest

from kernel.testing.project import Project
from tests.plugins.commerce.conftest import StoreFactory, count_orders


async def test_same_key_with_another_payload_is_refused_and_runs_nothing(
    shop: Project, new_store: StoreFactory, superuser: asyncpg.Connection
) -> None:
    key = str(uuid.uuid4())
    with shop.serve() as server:
        async with httpx.AsyncClient(base_url=server.base_url, timeout=30) as http:
            store = await new_store(http)
            await store.add_product("sufuria", on_hand=5)
            first, second = await store.cart_with(("sufuria", 1)), await store.cart_with(("sufuria", 1))
            created = await store.checkout(first, key=key)
            reused = await store.checkout(second, key=key)
            second_cart = (await http.get(f"/carts/{second}", headers=store.host)).json()
    assert created.status_code == 201
    assert (reused.status_code, reused.json()["code"]) == (409, "idempotency_key_reused")
    assert second_cart["status"] == "open"
    assert await count_orders(superuser, store) == 1


async def test_a_covered_pattern_that_routes_nowhere_answers_as_routing_does(
    shop: Project, new_store: StoreFactory
) -> None:
    """`POST /payments/*` is covered, but a path no route serves is a 404, not a demand for a key."""
    with shop.serve() as server:
        async with httpx.AsyncClient(base_url=server.base_url, timeout=30) as http:
            store = await new_store(http)
            nowhere = await http.post("/payments/no-such-route", headers=store.host, json={})
            wrong_method = await http.put("/checkout", headers=store.host | {"Idempotency-Key": str(uuid.uuid4())})
    assert (nowhere.status_code, nowhere.json()["code"]) == (404, "not_found")
    assert wrong_method.status_code == 405


async def test_the_fingerprint_ignores_key_order_and_spacing(shop: Project, new_store: StoreFactory) -> None:
    key = str(uuid.uuid4())
    with shop.serve() as server:
        async with httpx.AsyncClient(base_url=server.base_url, timeout=30) as http:
            store = await new_store(http)
            await store.add_product("kiondo", on_hand=5)
            cart = await store.cart_with(("kiondo", 1))
            headers = store.host | {"Idempotency-Key": key, "Content-Type": "application/json"}
            first = await http.post(
                "/checkout", headers=headers, content=f'{{"cart_id":"{cart}","customer_phone":"+254712345678"}}'
            )
            again = await http.post(
                "/checkout", headers=headers, content=f'{{ "customer_phone": "+254712345678", "cart_id": "{cart}" }}'
            )
    assert first.status_code == 201
    assert (again.status_code, again.headers["Idempotent-Replayed"], again.json()) == (201, "true", first.json())


async def test_mismatch_status_422_follows_the_ietf_draft(
    shop: Project, new_store: StoreFactory, superuser: asyncpg.Connection
) -> None:
    shop.plugin_config("idempotency", {"mismatch_status": 422})
    key = str(uuid.uuid4())
    with shop.serve() as server:
        async with httpx.AsyncClient(base_url=server.base_url, timeout=30) as http:
            store = await new_store(http)
            await store.add_product("mkeka", on_hand=5)
            await store.checkout(await store.cart_with(("mkeka", 1)), key=key)
            reused = await store.checkout(await store.cart_with(("mkeka", 1)), key=key)
    assert (reused.status_code, reused.json()["code"]) == (422, "idempotency_key_reused")
    assert await count_orders(superuser, store) == 1


@pytest.mark.parametrize(
    ("key", "code"),
    [
        (None, "idempotency_key_missing"),
        ("", "validation_error"),
        ("x" * 256, "validation_error"),
        ("has space", "validation_error"),
        ("tab\tinside", "validation_error"),
    ],
)
async def test_a_missing_or_malformed_key_is_a_400_and_runs_nothing(
    shop: Project, new_store: StoreFactory, superuser: asyncpg.Connection, key: str | None, code: str
) -> None:
    with shop.serve() as server:
        async with httpx.AsyncClient(base_url=server.base_url, timeout=30) as http:
            store = await new_store(http)
            await store.add_product("jiko", on_hand=5)
            answer = await store.checkout(await store.cart_with(("jiko", 1)), key=key)
    assert (answer.status_code, answer.json()["code"]) == (400, code)
    assert answer.headers["content-type"] == "application/problem+json"
    assert await count_orders(superuser, store) == 0


async def test_the_same_key_in_another_tenant_is_independent(
    shop: Project, new_store: StoreFactory, superuser: asyncpg.Connection
) -> None:
    key = str(uuid.uuid4())
    with shop.serve() as server:
        async with httpx.AsyncClient(base_url=server.base_url, timeout=30) as http:
            one, two = await new_store(http), await new_store(http)
            for store in (one, two):
                await store.add_product("taa", on_hand=5)
            first = await one.checkout(await one.cart_with(("taa", 1)), key=key)
            second = await two.checkout(await two.cart_with(("taa", 2)), key=key)
    assert (first.status_code, second.status_code) == (201, 201)
    assert "Idempotent-Replayed" not in second.headers
    assert first.json()["id"] != second.json()["id"]
    assert (await count_orders(superuser, one), await count_orders(superuser, two)) == (1, 1)


async def test_a_recorded_4xx_is_replayed_too(shop: Project, new_store: StoreFactory) -> None:
    key = str(uuid.uuid4())
    with shop.serve() as server:
        async with httpx.AsyncClient(base_url=server.base_url, timeout=30) as http:
            store = await new_store(http)
            await store.add_product("ndoo", on_hand=1)
            cart = await store.cart_with(("ndoo", 2))
            first = await store.checkout(cart, key=key)
            again = await store.checkout(cart, key=key)
    assert (first.status_code, first.json()["code"]) == (409, "out_of_stock")
    assert (again.status_code, again.headers["Idempotent-Replayed"]) == (409, "true")
    assert again.json() == first.json()
    assert again.headers["content-type"] == "application/problem+json"


async def test_a_request_that_failed_with_a_5xx_leaves_no_record_and_its_retry_runs(
    shop: Project, new_store: StoreFactory, superuser: asyncpg.Connection
) -> None:
    """The database refuses this one phone number's order (a real failure inside the business transaction)."""
    key = str(uuid.uuid4())
    phone = "+254799000111"
    constraint = f"orders_fail_{uuid.uuid4().hex[:8]}"
    await superuser.execute(f"ALTER TABLE orders ADD CONSTRAINT {constraint} CHECK (customer_phone <> '{phone}')")
    try:
        with shop.serve() as server:
            async with httpx.AsyncClient(base_url=server.base_url, timeout=30) as http:
                store = await new_store(http)
                await store.add_product("kapu", on_hand=5)
                cart = await store.cart_with(("kapu", 1))
                failed = await store.checkout(cart, key=key, phone=phone)
                records = await superuser.fetchval(
                    "SELECT count(*) FROM idempotency_keys WHERE tenant_id = $1::uuid", store.tenant_id
                )
                reserved_after_failure = (await store.product("kapu"))["reserved"]
                await superuser.execute(f"ALTER TABLE orders DROP CONSTRAINT {constraint}")
                retried = await store.checkout(cart, key=key, phone=phone)
    finally:
        await superuser.execute(f"ALTER TABLE orders DROP CONSTRAINT IF EXISTS {constraint}")
    assert (failed.status_code, failed.json()["code"]) == (500, "internal_error")
    assert (records, reserved_after_failure) == (0, 0)
    assert retried.status_code == 201
    assert "Idempotent-Replayed" not in retried.headers
    assert await count_orders(superuser, store) == 1


async def test_the_api_document_declares_the_required_header_on_covered_routes(shop: Project) -> None:
    with shop.serve() as server:
        async with httpx.AsyncClient(base_url=server.base_url, timeout=30) as http:
            paths = (await http.get("/openapi.json")).json()["paths"]
    checkout = paths["/checkout"]["post"]
    assert {"name": "Idempotency-Key", "in": "header", "required": True} in [
        {key: parameter[key] for key in ("name", "in", "required")} for parameter in checkout["parameters"]
    ]
    assert "409" in checkout["responses"]
    assert not any(p["name"] == "Idempotency-Key" for p in paths["/carts"]["post"].get("parameters", []))


async def test_a_malformed_body_is_a_400_and_leaves_no_record(
    shop: Project, new_store: StoreFactory, superuser: asyncpg.Connection
) -> None:
    with shop.serve() as server:
        async with httpx.AsyncClient(base_url=server.base_url, timeout=30) as http:
            store = await new_store(http)
            headers = store.host | {"Idempotency-Key": str(uuid.uuid4()), "Content-Type": "application/json"}
            answer = await http.post("/checkout", headers=headers, content=b"\xff\xfe{")
    records = await superuser.fetchval(
        "SELECT count(*) FROM idempotency_keys WHERE tenant_id = $1::uuid", store.tenant_id
    )
    assert (answer.status_code, answer.json()["code"]) == (400, "validation_error")
    assert records == 0


async def test_a_replay_has_its_own_request_id_and_names_the_original_one(
    shop: Project, new_store: StoreFactory
) -> None:
    key = str(uuid.uuid4())
    with shop.serve() as server:
        async with httpx.AsyncClient(base_url=server.base_url, timeout=30) as http:
            store = await new_store(http)
            await store.add_product("debe", on_hand=1)
            cart = await store.cart_with(("debe", 2))
            first = await store.checkout(cart, key=key)
            again = await store.checkout(cart, key=key)
    original = first.headers["X-Request-ID"]
    assert first.json()["request_id"] == original
    # The body is the original answer, byte for byte; the header names this exchange, the other one the first.
    assert again.content == first.content
    assert again.headers["X-Request-ID"] != original
    assert again.headers["Idempotent-Original-Request-ID"] == original
