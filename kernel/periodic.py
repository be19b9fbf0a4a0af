"""Periodic jobs without a scheduler process: every process ticks, a Redis lock lets one enqueue per period.

Each process that enters a plugin's lifespan (web and worker alike) runs the ticker; `SET NX PX` on a key named
after the queue and the task lets exactly one of them enqueue per period, and the workers run the jobs. Jobs are
at least once, so the task must be idempotent anyway; the lock only keeps the queue from filling up with
duplicates. `tenants` fans the job out: one job per tenant, each carrying its tenant like a request's job does.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from contextlib import AbstractAsyncContextManager, asynccontextmanager, suppress
from typing import TYPE_CHECKING

from kernel.context import tenant_id_var
from kernel.redis_client import RedisClient

if TYPE_CHECKING:
    from kernel.kernel import Kernel

log = logging.getLogger("soko.periodic")

TenantIds = Callable[[], Awaitable[Iterable[str | None]]]


async def _no_tenant() -> list[str | None]:
    return [None]


def periodic(kernel: Kernel, task_name: str, seconds: float) -> AbstractAsyncContextManager[None]:
    """`periodic_per_tenant` for a job that carries no tenant (the kernel's inbox sweep)."""
    return periodic_per_tenant(kernel, task_name, seconds, tenants=_no_tenant)


@asynccontextmanager
async def periodic_per_tenant(
    kernel: Kernel, task_name: str, seconds: float, *, tenants: TenantIds
) -> AsyncIterator[None]:
    """While the block runs, enqueue `task_name` once per tenant about every `seconds` across all processes."""
    if kernel.broker is None or kernel.settings.redis_url is None:
        yield
        return
    async with kernel.redis_opened() as redis:
        stop = asyncio.Event()
        ticker = asyncio.create_task(_tick(kernel, redis, task_name, seconds, tenants, stop))
        try:
            yield
        finally:
            # redis-py 8.1 can swallow a cancellation mid-command; the stop flag ends the loop all the same.
            stop.set()
            ticker.cancel()
            await asyncio.wait([ticker])


async def _tick(
    kernel: Kernel, redis: RedisClient, task_name: str, seconds: float, tenants: TenantIds, stop: asyncio.Event
) -> None:
    lock = f"soko:periodic:{kernel.settings.queue_name}:{task_name}"
    task = kernel.task(task_name)
    while not stop.is_set():
        try:
            if await redis.set(lock, "1", nx=True, px=max(1, int(seconds * 1000))):
                for tenant_id in await tenants():
                    token = tenant_id_var.set(tenant_id)
                    try:
                        await task.kiq()
                    finally:
                        tenant_id_var.reset(token)
        except Exception:  # a Redis or database hiccup skips one period; the next tick tries again
            log.exception("periodic %s: could not enqueue", task_name)
        with suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), seconds)
