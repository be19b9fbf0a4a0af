"""Carts: what a customer means to buy. A cart is checked out once; its order keeps the prices it had then.

A line holds at most `max_line_quantity` and a cart totals at most `max_order_total_minor`: a change past either is
a 409 and is rolled back with the request's transaction, so no sum ever overflows the database's bigint.
"""

from __future__ import annotations

import uuid
from typing import Any

import asyncpg

from kernel import Problem
from plugins.commerce.settings import CommerceSettings


def parse_id(text: str, what: str) -> uuid.UUID:
    """An id from a URL or a body; anything that is no UUID names nothing, so it is a 404 like an unknown one."""
    try:
        return uuid.UUID(text)
    except ValueError:
        raise Problem(404, f"{what}_not_found", f"No {what} has the id {text[:64]!r}.") from None


async def create_cart(connection: asyncpg.Connection, currency: str) -> dict[str, Any]:
    cart_id = await connection.fetchval("INSERT INTO carts (currency) VALUES ($1) RETURNING id", currency)
    return await get_cart(connection, cart_id)


async def get_cart(connection: asyncpg.Connection, cart_id: uuid.UUID) -> dict[str, Any]:
    cart = await connection.fetchrow("SELECT id::text, currency, status FROM carts WHERE id = $1", cart_id)
    if cart is None:
        raise Problem(404, "cart_not_found", f"No cart has the id {cart_id}.")
    items = await connection.fetch(
        "SELECT p.sku, p.name, c.quantity, p.price_minor AS unit_price_minor, c.quantity * p.price_minor AS "
        "line_total_minor FROM cart_items c JOIN products p ON p.id = c.product_id WHERE c.cart_id = $1 "
        "ORDER BY p.sku",
        cart_id,
    )
    lines = [dict(item) for item in items]
    return dict(cart) | {"items": lines, "total_minor": sum(line["line_total_minor"] for line in lines)}


async def _open_cart(connection: asyncpg.Connection, cart_id: uuid.UUID) -> asyncpg.Record:
    """The cart, locked for this change; 404 if there is none, 409 once it has been checked out."""
    cart = await connection.fetchrow("SELECT currency, status FROM carts WHERE id = $1 FOR UPDATE", cart_id)
    if cart is None:
        raise Problem(404, "cart_not_found", f"No cart has the id {cart_id}.")
    if cart["status"] != "open":
        raise Problem(409, "cart_checked_out", "This cart has been checked out; start a new one.")
    return cart


async def add_item(
    connection: asyncpg.Connection, cart_id: uuid.UUID, sku: str, quantity: int, limits: CommerceSettings
) -> dict[str, Any]:
    """Add `quantity` of a product (to what the cart holds of it already). Stock is checked at checkout."""
    cart = await _open_cart(connection, cart_id)
    product = await connection.fetchrow("SELECT id, currency FROM products WHERE sku = $1", sku)
    if product is None:
        raise Problem(404, "product_not_found", f"No product has the SKU {sku!r}.")
    if product["currency"] != cart["currency"]:
        raise Problem(409, "currency_mismatch", f"The cart is in {cart['currency']}, {sku!r} in {product['currency']}.")
    held = await connection.fetchval(
        "INSERT INTO cart_items (cart_id, product_id, quantity) VALUES ($1, $2, $3) "
        "ON CONFLICT (cart_id, product_id) DO UPDATE SET quantity = cart_items.quantity + EXCLUDED.quantity "
        "RETURNING quantity",
        cart_id,
        product["id"],
        quantity,
    )
    check_line(held, limits)
    return within_limits(await get_cart(connection, cart_id), limits)


def check_line(quantity: int, limits: CommerceSettings) -> None:
    if quantity > limits.max_line_quantity:
        raise Problem(
            409,
            "line_quantity_exceeded",
            f"A cart line may hold at most {limits.max_line_quantity} of a product.",
            max_line_quantity=limits.max_line_quantity,
        )


def check_total(total_minor: int, limits: CommerceSettings) -> None:
    if total_minor > limits.max_order_total_minor:
        raise Problem(
            409,
            "order_total_exceeded",
            f"A cart may total at most {limits.max_order_total_minor} minor units.",
            max_order_total_minor=limits.max_order_total_minor,
        )


def within_limits(cart: dict[str, Any], limits: CommerceSettings) -> dict[str, Any]:
    """The cart, once its total is known to be within the limit."""
    check_total(cart["total_minor"], limits)
    return cart


async def set_quantity(
    connection: asyncpg.Connection, cart_id: uuid.UUID, sku: str, quantity: int, limits: CommerceSettings
) -> dict[str, Any]:
    """Change how many of a line the cart holds; 0 removes the line. A line not in the cart is a 404."""
    check_line(quantity, limits)
    await _open_cart(connection, cart_id)
    if quantity == 0:
        changed = await connection.fetchval(
            "DELETE FROM cart_items c USING products p WHERE p.id = c.product_id AND c.cart_id = $1 AND p.sku = $2 "
            "RETURNING c.product_id",
            cart_id,
            sku,
        )
    else:
        changed = await connection.fetchval(
            "UPDATE cart_items c SET quantity = $3 FROM products p WHERE p.id = c.product_id AND c.cart_id = $1 "
            "AND p.sku = $2 RETURNING c.product_id",
            cart_id,
            sku,
            quantity,
        )
    if changed is None:
        raise Problem(404, "cart_item_not_found", f"The cart holds no {sku[:64]!r}.")
    return within_limits(await get_cart(connection, cart_id), limits)
