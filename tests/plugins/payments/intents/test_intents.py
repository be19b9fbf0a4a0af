"""Payment intents end to end: checkout -> POST /payments/intents -> STK push from the worker -> the simulator's
callback through the kernel's inbox -> the order paid; and what the routes refuse."""

from __future__ import annotations

import asyncpg

from tests.plugins.payments.intents.conftest import PRICE, Stack


async def test_checkout_to_paid_order_through_the_worker_and_the_callback(
    stack: Stack, superuser: asyncpg.Connection
) -> None:
    tenant = await stack.shop()
    order_id = await stack.order(tenant, quantity=2)
    answer = await stack.pay(tenant, order_id)
    assert answer.status_code == 201, answer.text
    intent = answer.json()
    assert (intent["status"], intent["amount"], intent["currency"]) == ("created", 2 * PRICE, "KES")
    settled = await stack.settled(tenant, intent["id"])
    assert (settled["status"], settled["refund_required"]) == ("succeeded", False), stack.worker_log()
    assert await stack.order_status(tenant, order_id) == "paid"
    row = await superuser.fetchrow(
        "SELECT provider_ref, receipt, phone, attempts FROM payment_intents WHERE id = $1::uuid", intent["id"]
    )
    assert row["provider_ref"].startswith("ws_CO_") and row["receipt"] and row["phone"] == "+254712345678"
    assert row["attempts"] == 1
    stock = await superuser.fetchrow(
        "SELECT on_hand, reserved FROM inventory i JOIN products p ON p.id = i.product_id WHERE p.tenant_id = $1::uuid",
        tenant.id,
    )
    assert (stock["on_hand"], stock["reserved"]) == (8, 0)
    push = stack.simulator.pushes[row["provider_ref"]]
    assert (push.amount, push.phone) == (2 * PRICE // 100, "254712345678")


async def test_the_same_idempotency_key_replays_the_intent_and_pushes_once(
    stack: Stack, superuser: asyncpg.Connection
) -> None:
    tenant = await stack.shop()
    order_id = await stack.order(tenant)
    first = await stack.pay(tenant, order_id, key="same-key")
    again = await stack.pay(tenant, order_id, key="same-key")
    assert (first.status_code, again.status_code) == (201, 201)
    assert again.json()["id"] == first.json()["id"] and again.headers.get("Idempotent-Replayed") == "true"
    await stack.settled(tenant, first.json()["id"])
    rows = await superuser.fetch(
        "SELECT idempotency_key, attempts FROM payment_intents WHERE tenant_id = $1::uuid", tenant.id
    )
    assert [(row["idempotency_key"], row["attempts"]) for row in rows] == [("same-key", 1)]


async def test_one_open_intent_per_order(stack: Stack) -> None:
    tenant = await stack.shop()
    order_id = await stack.order(tenant, phone="0700000404")
    first = await stack.pay(tenant, order_id, "+254700000404")  # the simulator never calls back for this phone
    second = await stack.pay(tenant, order_id, "+254700000404")
    assert first.status_code == 201, first.text
    assert (second.status_code, second.json()["code"]) == (409, "payment_in_progress")
    assert second.json()["intent_id"] == first.json()["id"]


async def test_refusals_have_stable_codes(stack: Stack, superuser: asyncpg.Connection) -> None:
    tenant = await stack.shop(price=35_050)  # KES 350.50: M-Pesa moves whole shillings only
    unknown = await stack.pay(tenant, "7d1c3f4e-0000-4000-8000-000000000000")
    assert (unknown.status_code, unknown.json()["code"]) == (404, "order_not_found")
    cents = await stack.pay(tenant, await stack.order(tenant))
    assert (cents.status_code, cents.json()["code"]) == (422, "amount_not_whole")
    no_key = await stack.http.post(
        "/payments/intents",
        headers={"Host": tenant.host},
        json={"order_id": "x", "provider": "mpesa", "phone": "+254712345678"},
    )
    assert (no_key.status_code, no_key.json()["code"]) == (400, "idempotency_key_missing")
    other = await stack.shop()
    paid_order = await stack.order(other)
    await stack.settled(other, (await stack.pay(other, paid_order)).json()["id"])
    again = await stack.pay(other, paid_order)
    assert (again.status_code, again.json()["code"]) == (409, "order_not_payable")
    provider = await stack.http.post(
        "/payments/intents",
        headers={"Host": other.host, "Idempotency-Key": "k-provider"},
        json={"order_id": paid_order, "provider": "paypal", "phone": "+254712345678"},
    )
    assert (provider.status_code, provider.json()["code"]) == (422, "provider_not_available")
    assert await superuser.fetchval("SELECT count(*) FROM payment_intents WHERE tenant_id = $1::uuid", tenant.id) == 0


async def test_another_tenants_intent_is_not_found(stack: Stack) -> None:
    tenant, other = await stack.shop(), await stack.shop()
    intent = (await stack.pay(tenant, await stack.order(tenant))).json()
    mine = await stack.http.get(f"/payments/intents/{intent['id']}", headers={"Host": tenant.host})
    theirs = await stack.http.get(f"/payments/intents/{intent['id']}", headers={"Host": other.host})
    assert mine.status_code == 200
    assert (theirs.status_code, theirs.json()["code"]) == (404, "payment_not_found")
    junk = await stack.http.get("/payments/intents/not-a-uuid", headers={"Host": tenant.host})
    assert junk.status_code == 404
