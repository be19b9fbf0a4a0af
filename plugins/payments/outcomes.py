"""What the provider says about a payment, applied to its intent: the one place callbacks, the push job and
reconciliation converge, always in the tenant's transaction and always through `states.transition`.

A success marks the order paid through commerce and, the one time it does, emits `order_paid` (a receipt follows
from whichever plugin implements it). When the order can no longer take the money (its reservation
expired first, or another payment paid it) the intent is still recorded as succeeded, since the customer's
money moved, and flagged `refund_required` for staff: a late payment is never dropped.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from kernel import Kernel, Money, PaidOrder, PaymentErrorCode, PaymentStatus
from plugins.commerce.public import PaidOutcome, mark_order_paid, payable_order, release_order
from plugins.payments import intents
from plugins.payments.settings import PaymentsSettings
from plugins.payments.states import Status, transition

log = logging.getLogger("soko.payments")

NAME = "payments"


@dataclass(frozen=True)
class Outcome:
    status: PaymentStatus
    failure: PaymentErrorCode | None = None
    receipt: str | None = None


async def settle(kernel: Kernel, intent: dict[str, Any], outcome: Outcome) -> dict[str, Any] | None:
    """Apply `outcome`; the intent as changed, or None when nothing changed (not final yet, or applied already)."""
    connection = kernel.connection()
    if outcome.status is PaymentStatus.CAPTURED:
        moved = await transition(connection, intent["id"], Status.SUCCEEDED, receipt=outcome.receipt)
        if moved is not None:
            await _credit(kernel, moved)
        return moved
    if outcome.status in (PaymentStatus.FAILED, PaymentStatus.CANCELED):
        code = outcome.failure or PaymentErrorCode.UNKNOWN
        return await fail(kernel, intent, code)
    if outcome.status is PaymentStatus.REFUNDED:
        return await transition(connection, intent["id"], Status.REFUNDED)
    return None  # pending, requires_action, authorized: still waiting for the customer


async def fail(kernel: Kernel, intent: dict[str, Any], code: PaymentErrorCode | str) -> dict[str, Any] | None:
    """The payment will not happen: fail the intent and, per `release_stock_on_failure`, free the order's stock."""
    moved = await transition(kernel.connection(), intent["id"], Status.FAILED, failure_code=str(code))
    if moved is not None:
        log.info("payment failed", extra={"intent_id": str(moved["id"]), "failure_code": str(code)})
        if kernel.settings_of(NAME, PaymentsSettings).release_stock_on_failure:
            await release_order(kernel, str(moved["order_id"]))
    return moved


async def _credit(kernel: Kernel, intent: dict[str, Any]) -> None:
    paid = await mark_order_paid(kernel, str(intent["order_id"]), str(intent["id"]))
    if paid is PaidOutcome.PAID:
        log.info("payment succeeded, order paid", extra={"intent_id": str(intent["id"])})
        await _announce(kernel, intent)
        return
    await intents.flag_refund(kernel.connection(), intent["id"])
    intent["refund_required"] = True
    log.warning(
        "payment succeeded for an order that cannot take it; flagged for refund",
        extra={"intent_id": str(intent["id"]), "order_outcome": str(paid)},
    )


async def _announce(kernel: Kernel, intent: dict[str, Any]) -> None:
    """`order_paid`, once per order (commerce said PAID only now), in the same transaction: a receipt is queued
    with the payment or not at all."""
    order = await payable_order(kernel, str(intent["order_id"]))
    paid = PaidOrder(
        order_id=str(intent["order_id"]),
        total=Money(intent["amount"], intent["currency"]),
        customer_phone=order.customer_phone if order is not None else None,
        payment_id=str(intent["id"]),
    )
    await kernel.emit("order_paid", order=paid)
