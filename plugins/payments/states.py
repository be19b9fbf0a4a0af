"""The payment intent's state machine, and the one function that moves an intent from one state to another.

    created -> pending -> succeeded -> refunded
       |          |-----> failed | expired
       |-----> failed | cancelled
    and so that no money is dropped: failed | cancelled | expired -> succeeded, cancelled -> pending

Terminal states are never left, with two exceptions that keep money from being dropped. Money that moved wins:
a success reported for an intent already `failed`, `cancelled` or `expired` (a late callback after
reconciliation gave up on it) still makes it `succeeded`, and the order, unable to take it, flags it for refund.
A prompt the provider accepted wins too: a push whose answer comes back after reconciliation cancelled the
`created` intent (the two ran at once) makes it `pending`, so its callback finds it. Every change is one conditional
`UPDATE ... WHERE status = ANY(allowed_from) RETURNING` in the tenant's transaction: when a callback and a
reconciliation query race, both issue it, the row lock orders them, and the second one's `WHERE` no longer matches,
so exactly one transition happens and the loser learns it changed nothing (None).
"""

from __future__ import annotations

import uuid
from enum import StrEnum
from typing import Any

import asyncpg

from kernel import count_payment_intent


class Status(StrEnum):
    CREATED = "created"  # stored; the provider has not been asked yet
    PENDING = "pending"  # the provider accepted it (an STK prompt is on the phone); the outcome is awaited
    SUCCEEDED = "succeeded"
    FAILED = "failed"  # the provider or the customer said no (`failure_code` says why)
    CANCELLED = "cancelled"  # the order stopped being payable before the provider was asked
    EXPIRED = "expired"  # the order's reservation ran out while the customer had not paid
    REFUNDED = "refunded"


ACTIVE = (Status.CREATED, Status.PENDING)

# to -> the states it may be reached from.
ALLOWED_FROM: dict[Status, tuple[Status, ...]] = {
    Status.PENDING: (Status.CREATED, Status.CANCELLED),
    Status.SUCCEEDED: (Status.PENDING, Status.FAILED, Status.CANCELLED, Status.EXPIRED),
    Status.FAILED: ACTIVE,  # from created: the provider refused the push outright
    Status.CANCELLED: (Status.CREATED,),
    Status.EXPIRED: (Status.PENDING,),
    Status.REFUNDED: (Status.SUCCEEDED,),
}

# The columns a transition may set besides the status; anything else is a programming error.
_SETTABLE = frozenset({"provider_ref", "receipt", "failure_code", "refund_required"})
_SETTLED = frozenset(ALLOWED_FROM) - {Status.PENDING}


async def transition(
    connection: asyncpg.Connection, intent_id: uuid.UUID, to: Status, **fields: Any
) -> dict[str, Any] | None:
    """Move the intent to `to` if its state allows it; the updated row, or None when it did not (already moved)."""
    unknown = set(fields) - _SETTABLE
    if unknown:
        raise ValueError(f"a transition cannot set {', '.join(sorted(unknown))}")
    names = list(fields)
    assignments = "".join(f", {name} = ${index}" for index, name in enumerate(names, start=4))
    stamp = (
        ", pending_at = now(), settled_at = NULL"
        if to is Status.PENDING
        else ", settled_at = now()"
        if to in _SETTLED
        else ""
    )
    row = await connection.fetchrow(
        f"UPDATE payment_intents SET status = $2, updated_at = now(){stamp}{assignments} "  # noqa: S608 - names checked above
        "WHERE id = $1 AND status = ANY($3::text[]) RETURNING *",
        intent_id,
        str(to),
        [str(state) for state in ALLOWED_FROM[to]],
        *fields.values(),
    )
    if row is None:
        return None
    count_payment_intent(row["provider"], str(to))
    return dict(row)
