"""Three routes that do what bench_side_by_side.py's hand-written app does, the soko way.

- `GET /bench/trivial`: a tenant route whose view touches nothing (tenancy binds the tenant from the Host);
- `GET /bench/limited`: the same, on a route a rate-limit policy names (config written by the benchmark);
- `GET /bench/items`: the tenant's 20 rows of `bench_items`, a table under forced row-level security.

Request id, access log and security headers are the kernel's and the plugins' own: nothing here asks for them.
"""

from __future__ import annotations

from typing import Any

from piccolo.columns import Varchar
from piccolo.table import Table
from quart import Blueprint

from kernel import Kernel, hookimpl

requires = ["tenancy"]


class BenchItem(Table, tablename="bench_items"):
    """Tenant-owned: the benchmark creates it and makes it so with plugins.tenancy's `tenant_owned`."""

    body = Varchar(length=100)


async def trivial() -> dict[str, Any]:
    return {"ok": True}


@hookimpl
def register_blueprints(kernel: Kernel) -> list[Blueprint]:
    BenchItem._meta.db = kernel.engine  # no piccolo app of its own: the table is the benchmark's, made by SQL
    # A query a route runs on every request, frozen (piccolo's `freeze`): its SQL is built once, not per request.
    all_items = BenchItem.select(BenchItem.id, BenchItem.body).order_by(BenchItem.id).freeze()

    async def items() -> dict[str, Any]:
        return {"items": await all_items.run()}

    blueprint = Blueprint("benchplug", __name__)
    blueprint.add_url_rule("/bench/trivial", view_func=trivial)
    blueprint.add_url_rule("/bench/limited", view_func=trivial, endpoint="limited")
    blueprint.add_url_rule("/bench/items", view_func=items)
    return [blueprint]
