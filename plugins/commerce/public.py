"""What other plugins may use of commerce (declare `requires = ["commerce"]` on your plugin module).

- `mark_order_paid(kernel, order_id, payment_reference)`: the payments plugin calls it, in the tenant's
  transaction (a request's, a `tenant_task` job's), when a payment for the order succeeded. It turns the
  reservation into a sale once; called again it changes nothing and says `ALREADY_PAID`. An order that expired
  first says `EXPIRED` and is not revived: the caller decides about the late payment (a refund, usually).
- `PaidOutcome`: what `mark_order_paid` did.

A function, not a hook: marking paid is a command with one handler and an answer the caller needs, while hooks
broadcast events to every plugin and return nothing to act on.
"""

from __future__ import annotations

import uuid

from kernel import Kernel
from plugins.commerce.orders import PaidOutcome, mark_paid


async def mark_order_paid(kernel: Kernel, order_id: str, payment_reference: str) -> PaidOutcome:
    try:
        order = uuid.UUID(order_id)
    except ValueError:
        return PaidOutcome.NOT_FOUND
    return await mark_paid(kernel.connection(), order, payment_reference)


__all__ = ["PaidOutcome", "mark_order_paid"]
