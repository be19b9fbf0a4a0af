"""The demo store's catalogue for `soko dev`: a few products, each topped up to its stock on every start."""

from __future__ import annotations

from kernel import Kernel
from plugins.commerce import catalog
from plugins.commerce.settings import settings_of
from plugins.tenancy.public import tenant_scope

DEMO_STORE = "demo"
# (sku, name, price in minor units, units on the shelf)
CATALOGUE = (
    ("chai-250g", "Kericho chai, 250 g", 35_000, 50),
    ("kikoi", "Cotton kikoi", 120_000, 20),
    ("kiondo", "Sisal kiondo basket", 250_000, 10),
)


async def seed(kernel: Kernel) -> str:
    currency = settings_of(kernel).default_currency
    async with tenant_scope(kernel, DEMO_STORE):
        connection = kernel.connection()
        for sku, name, price_minor, stock in CATALOGUE:
            await catalog.ensure_product(connection, sku=sku, name=name, price_minor=price_minor, currency=currency)
            await catalog.top_up(connection, sku, stock)
    return f"demo catalogue: {', '.join(sku for sku, *_ in CATALOGUE)}"
