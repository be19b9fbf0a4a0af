"""Orders after checkout: read one, mark it paid, expire the unpaid ones and give their stock back.

An order holds the customer's phone number, so it is read only by staff of the store, by the customer who was
signed in when checking out, or with the token the checkout answered with (`X-Order-Token`); docs/commerce.md.
"""

from __future__ import annotations

import hashlib
import secrets
import uuid
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

import asyncpg

from kernel import Problem


class PaidOutcome(StrEnum):
    """What `mark_paid` did: the payments plugin decides what a late payment means (a refund, usually)."""

    PAID = "paid"
    ALREADY_PAID = "already_paid"
    EXPIRED = "expired"
    NOT_FOUND = "not_found"


@dataclass(frozen=True, slots=True)
class Reader:
    """Who asks to read an order: staff of the store, the signed-in customer's id, the checkout's token."""

    staff: bool = False
    customer_id: str | None = None
    token: str | None = None


def new_access_token() -> tuple[str, bytes]:
    """A token for the customer who checks out (256 random bits) and its SHA-256, which is all that is stored."""
    token = secrets.token_urlsafe(32)
    return token, token_hash(token)


def token_hash(token: str) -> bytes:
    return hashlib.sha256(token.encode()).digest()


async def get_order(
    connection: asyncpg.Connection, order_id: uuid.UUID, reader: Reader | None = None
) -> dict[str, Any]:
    """The order, for `reader` (None: the module's own callers, who just wrote it). An order `reader` may not see
    is a 404 like a missing one, so the answer says nothing about which ids exist."""
    reader = reader or Reader(staff=True)
    order = await connection.fetchrow(
        "SELECT id::text, status, customer_phone, currency, total_minor, expires_at, paid_at FROM orders "
        "WHERE id = $1 AND ($2 OR customer_id = $3::uuid OR access_token_hash = $4)",
        order_id,
        reader.staff,
        reader.customer_id,
        token_hash(reader.token) if reader.token else None,
    )
    if order is None:
        raise Problem(404, "order_not_found", f"No order has the id {order_id}.")
    lines = await connection.fetch(
        "SELECT sku, name, quantity, unit_price_minor FROM order_lines WHERE order_id = $1 ORDER BY sku", order_id
    )
    document = dict(order) | {"lines": [dict(line) for line in lines]}
    for stamp in ("expires_at", "paid_at"):
        document[stamp] = document[stamp] and document[stamp].isoformat()
    return document


async def mark_paid(connection: asyncpg.Connection, order_id: uuid.UUID, payment_reference: str) -> PaidOutcome:
    """Turn the order's reservation into a sale, once: a repeated call finds it paid and changes nothing."""
    paid = await connection.fetchval(
        "UPDATE orders SET status = 'paid', paid_at = now(), payment_reference = $2 "
        "WHERE id = $1 AND status = 'pending_payment' RETURNING id",
        order_id,
        payment_reference,
    )
    if paid is None:
        status = await connection.fetchval("SELECT status FROM orders WHERE id = $1", order_id)
        return {"paid": PaidOutcome.ALREADY_PAID, "expired": PaidOutcome.EXPIRED}.get(status, PaidOutcome.NOT_FOUND)
    await _move_stock(connection, [order_id], "on_hand = i.on_hand - l.quantity, reserved = i.reserved - l.quantity")
    return PaidOutcome.PAID


async def expire_due(connection: asyncpg.Connection) -> int:
    """Expire every unpaid order past its time and release its stock; run twice, the second run finds none."""
    return await _expire(connection, "expires_at <= now()")


async def release(connection: asyncpg.Connection, order_id: uuid.UUID) -> bool:
    """Expire one unpaid order now and give its stock back (its payment failed); False if it was not unpaid."""
    return await _expire(connection, "id = $1", order_id) == 1


async def payable(connection: asyncpg.Connection, order_id: uuid.UUID) -> dict[str, Any] | None:
    """What paying the order needs to know of it, or None when there is no such order."""
    row = await connection.fetchrow(
        "SELECT id::text, status, currency, total_minor, customer_phone, expires_at, "
        "status = 'pending_payment' AND expires_at > now() AS payable FROM orders WHERE id = $1",
        order_id,
    )
    return None if row is None else dict(row)


async def _expire(connection: asyncpg.Connection, condition: str, *args: object) -> int:
    expired = await connection.fetch(
        f"UPDATE orders SET status = 'expired' WHERE status = 'pending_payment' AND {condition} RETURNING id",  # noqa: S608 - condition is one of this module's constants
        *args,
    )
    ids = [row["id"] for row in expired]
    if ids:
        await _move_stock(connection, ids, "reserved = i.reserved - l.quantity")
    return len(ids)


async def _move_stock(connection: asyncpg.Connection, order_ids: list[uuid.UUID], assignment: str) -> None:
    """Apply `assignment` to the inventory of the orders' lines, locking rows in product-id order like checkout."""
    await connection.execute(
        "SELECT 1 FROM inventory WHERE product_id IN (SELECT product_id FROM order_lines WHERE order_id = ANY($1)) "
        "ORDER BY product_id FOR UPDATE",
        order_ids,
    )
    await connection.execute(
        f"UPDATE inventory i SET {assignment} FROM (SELECT product_id, sum(quantity) AS quantity FROM order_lines "  # noqa: S608 - assignment is one of this module's constants
        "WHERE order_id = ANY($1) GROUP BY product_id) l WHERE i.product_id = l.product_id",
        order_ids,
    )
