"""Payment intents in the database: create, read, and what reconciliation and the refunds list look up.

State changes do not happen here: they go through `states.transition`, the one checked way.
"""

from __future__ import annotations

import uuid
from typing import Any

import asyncpg

from kernel import Problem
from plugins.payments.states import ACTIVE

# What a client sees of an intent: never the phone, the receipt or the provider's reference.
_PUBLIC = (
    "id",
    "order_id",
    "status",
    "amount",
    "currency",
    "provider",
    "failure_code",
    "refund_required",
    "created_at",
    "updated_at",
)


def parse_id(text: str) -> uuid.UUID | None:
    try:
        return uuid.UUID(text)
    except ValueError:
        return None


async def create(
    connection: asyncpg.Connection, *, order_id: str, amount: int, currency: str, provider: str, phone: str, key: str
) -> dict[str, Any]:
    """A new `created` intent for the order; 409 while another one for the order is still open."""
    row = await connection.fetchrow(
        "INSERT INTO payment_intents (order_id, amount, currency, provider, phone, idempotency_key) "
        "VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT DO NOTHING RETURNING *",
        uuid.UUID(order_id),
        amount,
        currency,
        provider,
        phone,
        key,
    )
    if row is not None:
        return public(row)
    open_intent = await connection.fetchval(
        "SELECT id::text FROM payment_intents WHERE order_id = $1 AND status = ANY($2::text[])",
        uuid.UUID(order_id),
        [str(state) for state in ACTIVE],
    )
    if open_intent is not None:
        raise Problem(
            409, "payment_in_progress", "This order has a payment in progress; wait for it.", intent_id=open_intent
        )
    raise Problem(409, "idempotency_key_reused", "This Idempotency-Key already created another payment.")


async def get(connection: asyncpg.Connection, intent_id: uuid.UUID) -> dict[str, Any] | None:
    found = await connection.fetchrow("SELECT * FROM payment_intents WHERE id = $1", intent_id)
    return None if found is None else public(found)


async def row(connection: asyncpg.Connection, intent_id: uuid.UUID) -> dict[str, Any] | None:
    """Every column of one intent (phone included: never log it as it is)."""
    found = await connection.fetchrow("SELECT * FROM payment_intents WHERE id = $1", intent_id)
    return None if found is None else dict(found)


async def by_provider_ref(connection: asyncpg.Connection, provider: str, provider_ref: str) -> dict[str, Any] | None:
    found = await connection.fetchrow(
        "SELECT * FROM payment_intents WHERE provider = $1 AND provider_ref = $2", provider, provider_ref
    )
    return None if found is None else dict(found)


async def receipt_used_elsewhere(
    connection: asyncpg.Connection, provider: str, receipt: str, intent_id: uuid.UUID
) -> bool:
    return bool(
        await connection.fetchval(
            "SELECT true FROM payment_intents WHERE provider = $1 AND receipt = $2 AND id <> $3",
            provider,
            receipt,
            intent_id,
        )
    )


async def count_attempt(connection: asyncpg.Connection, intent_id: uuid.UUID) -> dict[str, Any] | None:
    """Count a push attempt of a `created` intent; None when it is no longer `created` (pushed already)."""
    found = await connection.fetchrow(
        "UPDATE payment_intents SET attempts = attempts + 1, updated_at = now() "
        "WHERE id = $1 AND status = 'created' RETURNING *",
        intent_id,
    )
    return None if found is None else dict(found)


async def flag_refund(connection: asyncpg.Connection, intent_id: uuid.UUID) -> None:
    """Money came in for an order that can no longer take it: staff must give it back (the refunds list)."""
    await connection.execute(
        "UPDATE payment_intents SET refund_required = true, updated_at = now() WHERE id = $1", intent_id
    )


async def open_intents(connection: asyncpg.Connection, limit: int) -> list[dict[str, Any]]:
    """The oldest open intents with how long they have waited, in seconds, by the database's clock."""
    rows = await connection.fetch(
        "SELECT id, order_id::text, status, provider, provider_ref, "
        "extract(epoch FROM now() - coalesce(pending_at, created_at))::float8 AS waited, "
        "extract(epoch FROM now() - updated_at)::float8 AS idle "
        "FROM payment_intents WHERE status = ANY($1::text[]) ORDER BY updated_at LIMIT $2",
        [str(state) for state in ACTIVE],
        limit,
    )
    return [dict(found) for found in rows]


async def refunds(connection: asyncpg.Connection) -> list[dict[str, Any]]:
    rows = await connection.fetch(
        "SELECT id::text, order_id::text, status, amount, currency, provider, provider_ref, receipt, settled_at "
        "FROM payment_intents WHERE refund_required AND status = 'succeeded' ORDER BY settled_at"
    )
    return [_stamped(dict(found)) for found in rows]


def public(found: asyncpg.Record | dict[str, Any]) -> dict[str, Any]:
    """An intent as its routes answer it."""
    return _stamped({name: found[name] for name in _PUBLIC})


def _stamped(document: dict[str, Any]) -> dict[str, Any]:
    for name, value in document.items():
        if hasattr(value, "isoformat"):
            document[name] = value.isoformat()
        elif isinstance(value, uuid.UUID):
            document[name] = str(value)
    return document
