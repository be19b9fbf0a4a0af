"""Records past their retention are removed by the periodic purge job, run by the real worker."""

from __future__ import annotations

import uuid

import asyncpg
import httpx

from kernel.testing.project import Project, eventually
from tests.plugins.commerce.conftest import StoreFactory


async def test_records_past_retention_are_purged_by_the_worker(
    shop: Project, new_store: StoreFactory, superuser: asyncpg.Connection
) -> None:
    shop.plugin_config("idempotency", {"retention_seconds": 1, "purge_interval_seconds": 0.2})
    with shop.worker(), shop.serve() as server:
        async with httpx.AsyncClient(base_url=server.base_url, timeout=30) as http:
            store = await new_store(http)
            await store.add_product("mswaki", on_hand=3)
            answer = await store.checkout(await store.cart_with(("mswaki", 1)), key=str(uuid.uuid4()))

            async def records() -> int:
                return await superuser.fetchval(
                    "SELECT count(*) FROM idempotency_keys WHERE tenant_id = $1::uuid", store.tenant_id
                )

            async def purged() -> bool:
                return await records() == 0

            recorded = await records()
            await eventually(purged, timeout=20, what="the purge job to delete the record")
    assert (answer.status_code, recorded) == (201, 1)
