"""What other plugins may use of commerce (declare `requires = ["commerce"]` on your plugin module).

- `mark_order_paid(kernel, order_id, payment_reference)`: the payments plugin calls it, in the tenant's
  transaction (a request's, a `tenant_task` job's), when a payment for the order succeeded. It turns the
  reservation into a sale once; called again it changes nothing and says `ALREADY_PAID`. An order that expired
  first says `EXPIRED` and is not revived: the caller decides about the late payment (a refund, usually).
- `PaidOutcome`: what `mark_order_paid` did.
- `payable_order(kernel, order_id)`: the order's amount, currency, status and whether it can be paid now
  (`PayableOrder`), or None: the payments plugin takes the amount from here, never from the client.
- `release_order(kernel, order_id)`: expire an unpaid order now and give its stock back (its payment failed and
  the shop releases stock on failure); False when it was not unpaid any more.

A function, not a hook: marking paid is a command with one handler and an answer the caller needs, while hooks
broadcast events to every plugin and return nothing to act on.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime

from kernel import Kernel
from plugins.commerce import orders
from plugins.commerce.orders import PaidOutcome


@dataclass(frozen=True)
class PayableOrder:
    id: str
    status: str  # pending_payment, paid or expired
    currency: str
    total_minor: int
    customer_phone: str
    expires_at: datetime
    payable: bool  # pending payment and its reservation still holds


def _uuid(order_id: str) -> uuid.UUID | None:
    try:
        return uuid.UUID(order_id)
    except ValueError:
        return None


async def mark_order_paid(kernel: Kernel, order_id: str, payment_reference: str) -> PaidOutcome:
    order = _uuid(order_id)
    if order is None:
        return PaidOutcome.NOT_FOUND
    return await orders.mark_paid(kernel.connection(), order, payment_reference)


async def payable_order(kernel: Kernel, order_id: str) -> PayableOrder | None:
    order = _uuid(order_id)
    found = None if order is None else await orders.payable(kernel.connection(), order)
    return None if found is None else PayableOrder(**found)


async def release_order(kernel: Kernel, order_id: str) -> bool:
    order = _uuid(order_id)
    return order is not None and await orders.release(kernel.connection(), order)


__all__ = ["PaidOutcome", "PayableOrder", "mark_order_paid", "payable_order", "release_order"]
