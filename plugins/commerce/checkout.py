"""Checkout: reserve every line's stock or none, and open an order that waits for payment.

No oversell, under any number of processes: each line is one atomic conditional UPDATE that succeeds only while
`on_hand - reserved` covers it, and the database's CHECK (0 <= reserved <= on_hand) backs that up. Lines are
reserved in product-id order, so two checkouts lock their rows in the same order and cannot deadlock. One line
short raises a 409 Problem, and the kernel rolls back the request's transaction: the lines already reserved and
the cart's checkout are undone with it.
"""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import Any

import asyncpg

from kernel import Problem
from plugins.commerce import carts, orders
from plugins.commerce.settings import CommerceSettings

_RESERVE = (
    "UPDATE inventory SET reserved = reserved + $2 WHERE product_id = $1 AND on_hand - reserved >= $2 "
    "RETURNING product_id"
)
_LINE_FIELDS = ("product_id", "sku", "name", "quantity", "price_minor")


async def checkout(
    connection: asyncpg.Connection,
    cart_id: uuid.UUID,
    customer_phone: str,
    limits: CommerceSettings,
    customer_id: str | None = None,
) -> dict[str, Any]:
    """The new `pending_payment` order of the cart, its stock reserved for `reservation_ttl_seconds`, with the
    `access_token` that reads it later (handed out once; the order keeps its hash). `customer_id`, the signed-in
    customer, may read it too."""
    cart = await connection.fetchrow(
        "UPDATE carts SET status = 'checked_out' WHERE id = $1 AND status = 'open' RETURNING currency", cart_id
    )
    if cart is None:
        exists = await connection.fetchval("SELECT true FROM carts WHERE id = $1", cart_id)
        if exists:
            raise Problem(409, "cart_checked_out", "This cart has been checked out already.")
        raise Problem(404, "cart_not_found", f"No cart has the id {cart_id}.")
    lines = await connection.fetch(
        "SELECT c.product_id, c.quantity, p.sku, p.name, p.price_minor FROM cart_items c "
        "JOIN products p ON p.id = c.product_id WHERE c.cart_id = $1 ORDER BY c.product_id",
        cart_id,
    )
    if not lines:
        raise Problem(409, "cart_empty", "The cart has no items.")
    for line in lines:  # in product-id order: see the module's docstring
        if await connection.fetchval(_RESERVE, line["product_id"], line["quantity"]) is None:
            raise Problem(409, "out_of_stock", f"Not enough {line['sku']!r} in stock.", sku=line["sku"])
    total = sum(line["quantity"] * line["price_minor"] for line in lines)
    carts.check_total(total, limits)  # the cart was within it when it changed; prices may have moved since
    token, token_hash = orders.new_access_token()
    order_id = await connection.fetchval(
        "INSERT INTO orders (cart_id, status, customer_phone, currency, total_minor, expires_at, access_token_hash, "
        "customer_id) VALUES ($1, 'pending_payment', $2, $3, $4, now() + $5, $6, $7::uuid) RETURNING id",
        cart_id,
        customer_phone,
        cart["currency"],
        total,
        timedelta(seconds=limits.reservation_ttl_seconds),
        token_hash,
        customer_id,
    )
    await connection.executemany(
        "INSERT INTO order_lines (order_id, product_id, sku, name, quantity, unit_price_minor) "
        "VALUES ($1, $2, $3, $4, $5, $6)",
        [(order_id, *(line[field] for field in _LINE_FIELDS)) for line in lines],
    )
    return await orders.get_order(connection, order_id) | {"access_token": token}
