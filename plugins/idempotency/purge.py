"""Retention: the periodic job, one per tenant, that deletes records older than `retention_seconds`."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager

from kernel import Kernel, periodic_per_tenant
from plugins.idempotency import records
from plugins.idempotency.settings import IdempotencySettings
from plugins.tenancy.public import list_tenants, tenant_task

TASK = "idempotency.purge"


def purge_task(kernel: Kernel) -> Callable[[], Awaitable[int]]:
    async def purge() -> int:
        return await records.purge(kernel.connection())

    return tenant_task(kernel, purge)


async def _tenant_ids() -> list[str]:
    return [tenant.id for tenant in await list_tenants()]


@asynccontextmanager
async def lifespan(kernel: Kernel) -> AsyncIterator[None]:
    async with periodic_per_tenant(
        kernel, TASK, kernel.settings_of("idempotency", IdempotencySettings).purge_interval_seconds, tenants=_tenant_ids
    ):
        yield
