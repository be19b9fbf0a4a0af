"""`soko products`: the operator's view of a store's catalogue, the same operations as the admin routes.

Each command starts the kernel, acts as the store (`--tenant`, its slug or id) in one transaction, and prints the
product lines; a refusal (an unknown SKU, stock below what is reserved) is a one-line error and exit status 1.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from typing import Any

import asyncpg
import click

from kernel import Kernel, Problem
from plugins.commerce import catalog
from plugins.commerce.settings import CommerceSettings
from plugins.tenancy.public import tenant_scope

Operation = Callable[[asyncpg.Connection], Awaitable[Any]]
_TENANT = click.option("--tenant", required=True, help="the store's slug or id")


def products_group(kernel: Kernel) -> click.Group:
    @click.group("products")
    def products() -> None:
        """List a store's products, add one, or set its stock."""

    @products.command("list")
    @_TENANT
    @click.option("--json", "as_json", is_flag=True, help="machine-readable output")
    def list_(tenant: str, as_json: bool) -> None:
        """Every product of the store: SKU, price, stock on hand, reserved and available."""
        found = _run(kernel, tenant, catalog.list_products)
        if as_json:
            click.echo(json.dumps(found, indent=2))
            return
        for product in found:
            _show(product)

    @products.command("add")
    @_TENANT
    @click.argument("sku")
    @click.option("--name", required=True, help="what customers see")
    @click.option("--price-minor", type=click.IntRange(0, 10**12), required=True, help="price in minor units (cents)")
    @click.option("--currency", help="ISO 4217 code (default: plugins.commerce.default_currency)")
    @click.option("--on-hand", type=click.IntRange(0, 10**9), default=0, show_default=True, help="units in stock")
    def add(tenant: str, sku: str, name: str, price_minor: int, currency: str | None, on_hand: int) -> None:
        """Add the product SKU to the store."""
        chosen = currency or kernel.settings_of("commerce", CommerceSettings).default_currency

        async def create(connection: asyncpg.Connection) -> dict[str, Any]:
            return await catalog.create_product(
                connection, sku=sku, name=name, price_minor=price_minor, currency=chosen, on_hand=on_hand
            )

        _show(_run(kernel, tenant, create))

    @products.command("stock")
    @_TENANT
    @click.argument("sku")
    @click.argument("on_hand", type=click.IntRange(0, 10**9))
    def stock(tenant: str, sku: str, on_hand: int) -> None:
        """Set how many units of SKU are on the shelf (never below what unpaid orders reserve)."""
        _show(_run(kernel, tenant, lambda connection: catalog.set_on_hand(connection, sku, on_hand)))

    return products


def _run(kernel: Kernel, tenant: str, operation: Operation) -> Any:
    async def scoped() -> Any:
        async with kernel.running(), tenant_scope(kernel, tenant):
            return await operation(kernel.connection())

    try:
        return asyncio.run(scoped())
    except Problem as problem:
        raise click.ClickException(f"{problem.code}: {problem.detail}") from None
    except LookupError as error:
        raise click.ClickException(f"tenant_not_found: {error}") from None


def _show(product: dict[str, Any]) -> None:
    click.echo(
        f"{product['sku']:<24} {product['price_minor']:>12} {product['currency']}  on hand {product['on_hand']}, "
        f"reserved {product['reserved']}, available {product['available']}  {product['name']}"
    )
