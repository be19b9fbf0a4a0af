"""Reservations that outlive their TTL: the periodic job, one per tenant, that gives their stock back."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager

from kernel import Kernel, periodic_per_tenant
from plugins.commerce import orders
from plugins.commerce.settings import CommerceSettings
from plugins.tenancy.public import list_tenants, tenant_task

TASK = "commerce.expire_reservations"


def expire_task(kernel: Kernel) -> Callable[[], Awaitable[int]]:
    """The job: runs in its tenant's transaction (tenant_task); at least once is fine, a rerun finds nothing."""

    async def expire_reservations() -> int:
        return await orders.expire_due(kernel.connection())

    return tenant_task(kernel, expire_reservations)


async def _tenant_ids() -> list[str]:
    return [tenant.id for tenant in await list_tenants()]


@asynccontextmanager
async def lifespan(kernel: Kernel) -> AsyncIterator[None]:
    async with periodic_per_tenant(
        kernel, TASK, kernel.settings_of("commerce", CommerceSettings).expiry_interval_seconds, tenants=_tenant_ids
    ):
        yield
