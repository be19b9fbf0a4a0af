"""What a callback or its absence does to an intent: failures release stock, forgeries and mismatches change
nothing, a missing callback is settled by reconciliation, a lost push is pushed again, and a payment after the
reservation expired, or after reconciliation gave up on the intent, is kept and flagged for refund."""

from __future__ import annotations

import copy
import uuid
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest

from kernel.testing.project import eventually
from kernel.testing.services import Database, Servers
from kernel.testing.tenants import create_staff
from plugins.payments.states import Status, transition
from plugins.payments_mpesa.simulator import DarajaSimulator, Push, stk_callback
from tests.plugins.commerce.conftest import sign_in
from tests.plugins.payments.intents.conftest import Stack, intents_project, running_stack

NO_CALLBACK = "+254700000404"
UNANSWERED = "+254700000408"  # no callback, and STK Query says "still being processed": reconciliation waits


@pytest.mark.parametrize(
    ("phone", "failure"),
    [
        ("+254700001032", "canceled_by_customer"),
        ("+254700001037", "expired"),
        ("+254700002001", "declined"),
        ("+254700000001", "insufficient_funds"),
    ],
)
async def test_a_failed_payment_fails_the_intent_and_releases_the_stock(
    stack: Stack, superuser: asyncpg.Connection, phone: str, failure: str
) -> None:
    tenant = await stack.shop()
    order_id = await stack.order(tenant, quantity=3)
    assert await _stock(superuser, tenant.id) == (10, 3)
    settled = await stack.settled(tenant, (await stack.pay(tenant, order_id, phone)).json()["id"])
    assert (settled["status"], settled["failure_code"]) == ("failed", failure)
    assert await stack.order_status(tenant, order_id) == "expired"
    assert await _stock(superuser, tenant.id) == (10, 0)


async def _stock(superuser: asyncpg.Connection, tenant_id: str) -> tuple[int, int]:
    row = await superuser.fetchrow(
        "SELECT on_hand, reserved FROM inventory i JOIN products p ON p.id = i.product_id WHERE p.tenant_id = $1::uuid",
        tenant_id,
    )
    return row["on_hand"], row["reserved"]


async def _pending_push(
    stack: Stack, superuser: asyncpg.Connection, phone: str = NO_CALLBACK
) -> tuple[Any, str, str, Push]:
    """A shop's intent whose STK push went out and whose callback never comes by itself."""
    tenant = await stack.shop()
    order_id = await stack.order(tenant)
    intent_id = (await stack.pay(tenant, order_id, phone)).json()["id"]

    async def pushed() -> str | None:
        ref: str | None = await superuser.fetchval(
            "SELECT provider_ref FROM payment_intents WHERE id = $1::uuid AND status = 'pending'", intent_id
        )
        return ref

    ref = await eventually(pushed, timeout=20, what="the push to be accepted")
    return tenant, order_id, intent_id, stack.simulator.pushes[ref]


async def _stored_intent(superuser: asyncpg.Connection, tenant_id: str, order_id: str, key: str) -> str:
    """An intent stored as the route stores it (`created`, KES 350), with no push job enqueued for it."""
    intent_id: str = await superuser.fetchval(
        "INSERT INTO payment_intents (tenant_id, order_id, amount, currency, provider, phone, idempotency_key) "
        "VALUES ($1::uuid, $2::uuid, 35000, 'KES', 'mpesa', '+254712345678', $3) RETURNING id::text",
        tenant_id,
        order_id,
        key,
    )
    return intent_id


async def _inbox_status(superuser: asyncpg.Connection, ref: str) -> str | None:
    status: str | None = await superuser.fetchval(
        "SELECT status FROM soko_kernel.webhook_inbox WHERE receiver = 'mpesa' AND dedupe_key = $1", ref
    )
    return status


def _forged(push: Push, **changes: Any) -> dict[str, Any]:
    body = copy.deepcopy(stk_callback(push))
    callback = body["Body"]["stkCallback"]
    callback.update(changes.pop("callback", {}))
    for item in callback.get("CallbackMetadata", {}).get("Item", []):
        if item["Name"] in changes:
            item["Value"] = changes[item["Name"]]
    return body


@pytest.mark.parametrize(
    "change",
    [
        {"Amount": 1.0},  # the intent is KES 350
        {"PhoneNumber": 254799999999},
        {"callback": {"CheckoutRequestID": "ws_CO_000000000000000unknown"}},
    ],
    ids=["wrong amount", "wrong phone", "unknown CheckoutRequestID"],
)
async def test_a_callback_that_does_not_match_its_intent_changes_nothing(
    stack: Stack, superuser: asyncpg.Connection, change: dict[str, Any]
) -> None:
    # A customer who never answers: reconciliation, which may run before the event is quarantined, leaves it be.
    tenant, order_id, intent_id, push = await _pending_push(stack, superuser, UNANSWERED)
    body = _forged(push, **copy.deepcopy(change))
    answer = await stack.http.post(push.callback_url.removeprefix(stack.servers[0].base_url), json=body)
    assert answer.status_code == 200
    ref = body["Body"]["stkCallback"]["CheckoutRequestID"]
    await eventually(
        lambda: _quarantined(superuser, ref), timeout=20, what=f"the callback to be quarantined\n{stack.worker_log()}"
    )
    assert (await stack.intent(tenant, intent_id))["status"] == "pending"
    assert await stack.order_status(tenant, order_id) == "pending_payment"
    assert "254799999999" not in stack.worker_log() and "254712345678" not in stack.worker_log()


async def _quarantined(superuser: asyncpg.Connection, ref: str) -> bool:
    return await _inbox_status(superuser, ref) == "quarantined"


async def test_a_forged_path_token_is_refused(stack: Stack, superuser: asyncpg.Connection) -> None:
    tenant, _, intent_id, push = await _pending_push(stack, superuser)
    token = push.callback_url.rpartition("/")[2]
    forged = token[:-4] + ("aaaa" if not token.endswith("aaaa") else "bbbb")
    answer = await stack.http.post(f"/webhooks/payments/mpesa/{forged}", json=stk_callback(push))
    assert answer.status_code == 404
    assert await _inbox_status(superuser, push.checkout_id) is None
    assert (await stack.intent(tenant, intent_id))["status"] == "pending"


async def test_a_callback_on_the_shared_url_finds_its_tenant_by_the_stored_reference(
    stack: Stack, superuser: asyncpg.Connection
) -> None:
    tenant, order_id, intent_id, push = await _pending_push(stack, superuser)
    answer = await stack.http.post("/webhooks/payments/mpesa", json=stk_callback(push))  # no tenant token
    assert answer.status_code == 200
    assert (await stack.settled(tenant, intent_id))["status"] == "succeeded"
    assert await _inbox_status(superuser, push.checkout_id) == "processed"
    assert await stack.order_status(tenant, order_id) == "paid"


async def test_no_callback_ever_reconciliation_settles_it(stack: Stack, superuser: asyncpg.Connection) -> None:
    queries = stack.simulator.counters["stk_query_requests"]
    tenant, order_id, intent_id, _ = await _pending_push(stack, superuser)
    settled = await stack.settled(tenant, intent_id, timeout=40)
    assert settled["status"] == "succeeded"
    assert await stack.order_status(tenant, order_id) == "paid"
    assert stack.simulator.counters["stk_query_requests"] > queries


async def test_an_intent_whose_push_was_lost_is_pushed_again(stack: Stack, superuser: asyncpg.Connection) -> None:
    tenant = await stack.shop()
    order_id = await stack.order(tenant)
    intent_id = await _stored_intent(superuser, tenant.id, order_id, "lost")  # its job never enqueued
    settled = await stack.settled(tenant, intent_id, timeout=40)
    assert settled["status"] == "succeeded"
    assert await stack.order_status(tenant, order_id) == "paid"


async def test_an_intent_never_pushed_whose_order_expired_is_cancelled(
    stack: Stack, superuser: asyncpg.Connection
) -> None:
    tenant = await stack.shop()
    order_id = await stack.order(tenant)
    intent_id = await _stored_intent(superuser, tenant.id, order_id, "lost-late")  # push lost; then the order ran out
    await superuser.execute("UPDATE orders SET status = 'expired' WHERE id = $1::uuid", order_id)
    settled = await stack.settled(tenant, intent_id, timeout=40)
    assert settled["status"] == "cancelled"
    assert await superuser.fetchval("SELECT attempts FROM payment_intents WHERE id = $1::uuid", intent_id) == 0


async def test_a_payment_after_the_reservation_expired_is_kept_and_flagged_for_refund(
    tmp_path: Path, soko_servers: Servers, intents_database: Database, daraja: DarajaSimulator
) -> None:
    project = intents_project(
        tmp_path,
        soko_servers,
        intents_database,
        daraja.url,  # type: ignore[attr-defined]
        # The push must go out before the order expires (3 to 3.5 s), and the callback comes 4 s after the push.
        commerce={"reservation_ttl_seconds": 3.0, "expiry_interval_seconds": 0.5},
    )
    with running_stack(project, daraja, intents_database) as stack:
        async with stack.http:
            tenant = await stack.shop()
            order_id = await stack.order(tenant)
            # The simulator calls back late for this phone (late_seconds = 4), after the order expired.
            intent_id = (await stack.pay(tenant, order_id, "+254700000003")).json()["id"]
            settled = await stack.settled(tenant, intent_id, timeout=40)
            assert (settled["status"], settled["refund_required"]) == ("succeeded", True)
            assert await stack.order_status(tenant, order_id) == "expired"
            anonymous = await stack.http.get("/admin/payments/refunds", headers={"Host": tenant.host})
            assert anonymous.status_code == 401
            async with httpx.AsyncClient(base_url=stack.servers[0].base_url, timeout=30) as staff:
                headers = {"Host": tenant.host} | await _staff(staff, tenant, intents_database)
                listed = (await staff.get("/admin/payments/refunds", headers=headers)).json()["refunds"]
                assert [(item["id"], item["amount"], item["order_id"]) for item in listed] == [
                    (intent_id, 35_000, order_id)
                ]
                assert listed[0]["receipt"]
                # Staff gave the money back by hand and say so: the intent is refunded and leaves the list.
                done = await staff.post(f"/admin/payments/intents/{intent_id}/refunded", headers=headers)
                assert (done.status_code, done.json()["status"]) == (200, "refunded"), done.text
                again = await staff.post(f"/admin/payments/intents/{intent_id}/refunded", headers=headers)
                assert (again.status_code, again.json()["code"]) == (409, "payment_not_refundable")
                assert (await staff.get("/admin/payments/refunds", headers=headers)).json()["refunds"] == []


@pytest.mark.parametrize("verdict", ["expired", "failed"])
async def test_a_success_reported_after_reconciliation_gave_up_is_recorded_and_flagged_for_refund(
    stack: Stack, superuser: asyncpg.Connection, verdict: str
) -> None:
    """Money that moved is never dropped, even when its callback comes after the intent was given up on."""
    tenant, order_id, intent_id, push = await _pending_push(stack, superuser, UNANSWERED)
    await superuser.execute(  # what reconciliation concludes when the order runs out, or the provider says no
        "UPDATE payment_intents SET status = $2, settled_at = now() WHERE id = $1::uuid", intent_id, verdict
    )
    await superuser.execute("UPDATE orders SET status = 'expired' WHERE id = $1::uuid", order_id)
    answer = await stack.http.post(push.callback_url.removeprefix(stack.servers[0].base_url), json=stk_callback(push))
    assert answer.status_code == 200

    async def recorded() -> bool:
        row = await superuser.fetchrow(
            "SELECT status, refund_required, receipt FROM payment_intents WHERE id = $1::uuid", intent_id
        )
        return (row["status"], row["refund_required"], row["receipt"] is not None) == ("succeeded", True, True)

    await eventually(recorded, timeout=20, what=f"the late payment to be recorded\n{stack.worker_log()}")
    assert await _inbox_status(superuser, push.checkout_id) == "processed"
    assert await stack.order_status(tenant, order_id) == "expired"


async def test_a_push_accepted_after_reconciliation_cancelled_its_intent_makes_it_pending(
    stack: Stack, superuser: asyncpg.Connection
) -> None:
    """The push job and reconciliation ran at once: the prompt went out, so the intent must wait for its callback."""
    tenant = await stack.shop()
    order_id = await stack.order(tenant)
    intent_id = await _stored_intent(superuser, tenant.id, order_id, "raced")
    await superuser.execute(  # reconciliation cancelled it while the provider was being asked
        "UPDATE payment_intents SET status = 'cancelled', settled_at = now() WHERE id = $1::uuid", intent_id
    )
    moved = await transition(superuser, uuid.UUID(intent_id), Status.PENDING, provider_ref="ws_CO_raced")
    assert moved is not None
    assert (moved["status"], moved["provider_ref"], moved["settled_at"]) == ("pending", "ws_CO_raced", None)


async def _staff(http: httpx.AsyncClient, tenant: Any, database: Database) -> dict[str, str]:
    """A staff member of the tenant, signed in: the headers that carry the session."""
    connection = await asyncpg.connect(database.owner_url)
    try:
        _, email = await create_staff(connection, tenant, email=f"staff-{uuid.uuid4().hex[:8]}@{tenant.host}")
    finally:
        await connection.close()
    return await sign_in(http, tenant.host, email)
