"""Routes that do, inside the tenant transaction, what real views do: read, write, fail and take their time."""

from __future__ import annotations

from typing import Any

from quart import Blueprint, request

from kernel import current_kernel, tenant_id_var
from soko_tenantprobe.tables import Item

blueprint = Blueprint("tenantprobe", __name__)


@blueprint.get("/probe/items")
async def list_items() -> dict[str, Any]:
    """Every item the transaction sees, with the tenant each row belongs to."""
    rows = await Item.raw("SELECT id, tenant_id::text AS tenant_id, body FROM tenantprobe_items ORDER BY id")
    return {"tenant": tenant_id_var.get(), "items": rows}


@blueprint.get("/probe/whoami")
async def whoami() -> dict[str, Any]:
    """The bound tenant, on a route that is not one of the tests' header routes."""
    return {"tenant": tenant_id_var.get()}


@blueprint.post("/probe/items")
async def add_item() -> tuple[dict[str, Any], int]:
    """Write an item; then, on request, fail (`fail=1`) or hold the transaction open (`hold=<seconds>`)."""
    body = request.args["body"]
    await Item.insert(Item(body=body))
    if request.args.get("fail"):
        raise RuntimeError("failing after the write, on purpose")
    if hold := request.args.get("hold"):
        await Item.raw("SELECT pg_sleep({})", float(hold))
    return {"tenant": tenant_id_var.get(), "body": body}, 201


@blueprint.post("/probe/jobs")
async def enqueue_item() -> tuple[dict[str, str], int]:
    """Leave the write to a job: it carries this request's tenant."""
    job = await current_kernel().task("tenantprobe.add_item").kiq(request.args["body"])
    return {"job_id": job.task_id}, 202


@blueprint.get("/probe/pool")
async def pool_state() -> dict[str, Any]:
    """Hold every connection of the pool at once and report each one's tenant setting and transaction state.

    Exempt from tenancy in the tests' settings: it must not hold a connection of its own while it looks.
    """
    kernel = current_kernel()
    assert kernel.engine is not None
    pool = kernel.engine.pool
    held = [await pool.acquire(timeout=10) for _ in range(kernel.settings.database_pool_max)]
    try:
        return {
            "connections": [
                {
                    "pid": connection.get_server_pid(),
                    "tenant": await connection.fetchval("SELECT current_setting('app.current_tenant', true)"),
                    "in_transaction": connection.is_in_transaction(),
                }
                for connection in held
            ]
        }
    finally:
        for connection in held:
            await pool.release(connection)
