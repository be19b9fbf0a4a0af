"""Periodic jobs without a scheduler process: every process ticks, a Redis lock lets one enqueue per period.

Each process that enters a plugin's lifespan (web and worker alike) runs the ticker; `SET NX PX` on a key named
after the queue and the task lets exactly one of them enqueue per period, and the workers run the jobs. Jobs are
at least once, so the task must be idempotent anyway; the lock only keeps the queue from filling up with
duplicates. `tenants` fans the job out: one job per tenant, each carrying its tenant like a request's job does.

Only the processes that serve run tickers (`kernel.running(serving=True)`: the web app and the worker); a CLI
command that starts the kernel for one operation runs none, so its exit waits on no ticker at all.

Stopping never depends on a cancellation reaching the ticker. On Python 3.11 `asyncio.wait_for` drops a
cancellation that arrives as the awaited call completes (CPython gh-86296, fixed in 3.12 by rebuilding it on
`asyncio.timeout`), and redis-py 8.1 sends every command through `wait_for` when a socket timeout is set: a
cancelled ticker could carry on into its next wait. So the ticker stops on a flag it checks between steps, every
Redis call it makes is bounded by socket timeouts, and leaving the block waits for it at most `STOP_WAIT_S`.
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
REDIS_TIMEOUT_S = 5.0  # connect and socket timeouts of the ticker's Redis calls
STOP_WAIT_S = 2 * REDIS_TIMEOUT_S  # leaving the block waits this long at most for the ticker's last step


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
    if not kernel.serving or kernel.broker is None or kernel.settings.redis_url is None:
        yield
        return
    async with kernel.redis_opened(socket_timeout=REDIS_TIMEOUT_S, socket_connect_timeout=REDIS_TIMEOUT_S) as redis:
        stop = asyncio.Event()
        ticker = asyncio.create_task(_tick(kernel, redis, task_name, seconds, tenants, stop))
        try:
            yield
        finally:
            stop.set()  # what ends the loop; the cancel only shortens a wait it may be in, if it gets there
            ticker.cancel()
            done, _ = await asyncio.wait([ticker], timeout=STOP_WAIT_S)
            if not done:
                log.warning("periodic %s: the ticker did not stop within %ss; left behind", task_name, STOP_WAIT_S)


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
