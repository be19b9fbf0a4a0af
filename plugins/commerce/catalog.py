"""Products and their stock: what the shop sells and how many it holds."""

from __future__ import annotations

from typing import Any

import asyncpg

from kernel import Problem

_PRODUCT = """
SELECT p.id::text, p.sku, p.name, p.price_minor, p.currency, i.on_hand, i.reserved, i.on_hand - i.reserved AS available
FROM products p JOIN inventory i ON i.product_id = p.id
"""


async def list_products(connection: asyncpg.Connection) -> list[dict[str, Any]]:
    return [dict(row) for row in await connection.fetch(_PRODUCT + " ORDER BY p.sku")]


async def product_by_sku(connection: asyncpg.Connection, sku: str) -> dict[str, Any]:
    row = await connection.fetchrow(_PRODUCT + " WHERE p.sku = $1", sku)
    if row is None:
        raise Problem(404, "product_not_found", f"No product has the SKU {sku!r}.")
    return dict(row)


async def create_product(
    connection: asyncpg.Connection, *, sku: str, name: str, price_minor: int, currency: str, on_hand: int
) -> dict[str, Any]:
    if not await _insert(connection, sku, name, price_minor, currency, on_hand):
        raise Problem(409, "product_exists", f"A product with the SKU {sku!r} exists already.")
    return await product_by_sku(connection, sku)


async def ensure_product(
    connection: asyncpg.Connection, *, sku: str, name: str, price_minor: int, currency: str
) -> None:
    """The product with this SKU, created with no stock if missing; an existing one is left as it is."""
    await _insert(connection, sku, name, price_minor, currency, 0)


async def _insert(
    connection: asyncpg.Connection, sku: str, name: str, price_minor: int, currency: str, on_hand: int
) -> bool:
    """Whether the product was new (and is now stocked with `on_hand`); an existing SKU is left alone."""
    product_id = await connection.fetchval(
        "INSERT INTO products (sku, name, price_minor, currency) VALUES ($1, $2, $3, $4) "
        "ON CONFLICT (tenant_id, sku) DO NOTHING RETURNING id",
        sku,
        name,
        price_minor,
        currency,
    )
    if product_id is None:
        return False
    await connection.execute("INSERT INTO inventory (product_id, on_hand) VALUES ($1, $2)", product_id, on_hand)
    return True


async def top_up(connection: asyncpg.Connection, sku: str, available: int) -> None:
    """Raise the stock so that at least `available` units are free (what open checkouts hold stays held)."""
    await connection.execute(
        "UPDATE inventory i SET on_hand = i.reserved + $2 FROM products p "
        "WHERE p.id = i.product_id AND p.sku = $1 AND i.on_hand - i.reserved < $2",
        sku,
        available,
    )


async def set_on_hand(connection: asyncpg.Connection, sku: str, on_hand: int) -> dict[str, Any]:
    """Set the count on the shelf; refused below what open checkouts hold (the database's CHECK agrees)."""
    updated = await connection.fetchval(
        "UPDATE inventory i SET on_hand = $2 FROM products p "
        "WHERE p.id = i.product_id AND p.sku = $1 AND i.reserved <= $2 RETURNING i.product_id",
        sku,
        on_hand,
    )
    if updated is None:
        product = await product_by_sku(connection, sku)  # 404 when there is no such product
        raise Problem(
            409,
            "inventory_below_reserved",
            f"{product['reserved']} units are reserved by unpaid orders; on_hand cannot go below that.",
        )
    return await product_by_sku(connection, sku)
