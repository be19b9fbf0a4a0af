"""Telling every process that a tenant changed, so none serves a stale answer from its cache.

A write (admin API, CLI) forgets the tenant in its own process at once, then publishes the tenant's id on a Redis
channel that every web and worker process listens to. The channel is not a per-tenant key, so it needs no hash
tag; it is named after `queue_name`, so deployments sharing a Redis do not hear each other. A message lost while
a listener reconnects is covered twice: the listener forgets everything when it (re)subscribes, and entries expire
after `cache_ttl_seconds` anyway.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import RedisError

from kernel import Kernel
from plugins.tenancy.directory import TenantDirectory, directory_for

log = logging.getLogger("soko.tenancy")

# A PING this often notices a dead connection that would otherwise wait silently for messages forever.
HEALTH_CHECK_S = 15
# How long one read waits for a message before the loop looks at its stop flag again.
POLL_S = 1.0
# How long startup waits to hear changes before serving without (the TTL then bounds staleness).
SUBSCRIBE_TIMEOUT_S = 5.0
RECONNECT_DELAYS_S = (0.1, 0.5, 1.0, 2.0, 5.0)


def channel(kernel: Kernel) -> str:
    return f"{kernel.settings.queue_name}:tenancy:changed"


async def announce(kernel: Kernel, tenant_id: str) -> None:
    """After a write committed: forget the tenant here, then tell the other processes."""
    directory_for(kernel).forget(tenant_id)
    if kernel.settings.redis_url is None:
        return
    async with kernel.redis() as client:
        await client.publish(channel(kernel), tenant_id)


@asynccontextmanager
async def listening(kernel: Kernel) -> AsyncIterator[None]:
    """Keep this process's directory in step with changes made anywhere, for as long as the context is open.

    Only in a process that serves: a CLI command lives for one operation, so its cache cannot go stale.
    """
    if kernel.settings.redis_url is None or not kernel.serving:
        yield
        return
    stop, subscribed = asyncio.Event(), asyncio.Event()
    listener = asyncio.create_task(_listen(kernel, channel(kernel), directory_for(kernel), stop, subscribed))
    try:
        try:
            await asyncio.wait_for(subscribed.wait(), SUBSCRIBE_TIMEOUT_S)
        except TimeoutError:
            log.warning("not subscribed to tenant changes yet; serving, with cached tenants trusted for their TTL")
        yield
    finally:
        stop.set()
        listener.cancel()
        # redis-py 8.1 sometimes swallows a cancellation inside get_message; the stop flag ends the loop anyway,
        # within one POLL_S.
        await asyncio.wait([listener])


async def _listen(
    kernel: Kernel, name: str, directory: TenantDirectory, stop: asyncio.Event, subscribed: asyncio.Event
) -> None:
    """Subscribe, forget everything (changes may have been missed), then forget each tenant named; reconnect on
    any error. Retries are ours, not redis-py's, which would resubscribe silently and hide the gap. The connection
    is named after the channel in Redis' CLIENT LIST."""
    failures = 0
    while not stop.is_set():
        try:
            client = kernel.redis(retry=Retry(NoBackoff(), 0), health_check_interval=HEALTH_CHECK_S, client_name=name)
            async with client, client.pubsub() as pubsub:
                await pubsub.subscribe(name)
                directory.forget_all()
                subscribed.set()
                failures = 0
                while not stop.is_set():
                    message = await pubsub.get_message(ignore_subscribe_messages=True, timeout=POLL_S)
                    if message is not None:
                        directory.forget(message["data"].decode())
        except Exception as error:  # a listener that died would leave every cache stale until its TTL
            delay = RECONNECT_DELAYS_S[min(failures, len(RECONNECT_DELAYS_S) - 1)]
            failures += 1
            log.warning(
                "tenant change listener failed (%s); forgetting cached tenants and retrying in %.1fs",
                type(error).__name__,
                delay,
                exc_info=not isinstance(error, RedisError | OSError),
            )
            directory.forget_all()
            await asyncio.sleep(delay)
