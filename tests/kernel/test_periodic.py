"""kernel.periodic against a real Redis: a ticker stops when its block ends, even if a library ate the cancel."""

from __future__ import annotations

import asyncio
import uuid
from contextlib import suppress
from pathlib import Path
from types import SimpleNamespace

from kernel import hookimpl
from kernel.kernel import build_kernel
from kernel.periodic import periodic_per_tenant
from kernel.settings import RawSettings
from tests.kernel.queue_app import REDIS_URL


async def _noop() -> None:
    """The periodic task; never run here, only enqueued."""


ticking = SimpleNamespace(register_tasks=hookimpl(lambda: {"tick": _noop}))


async def test_a_ticker_whose_cancellation_is_swallowed_still_stops() -> None:
    raw = RawSettings(Path.cwd(), "test", {"redis_url": REDIS_URL, "queue_name": f"soko-test-{uuid.uuid4().hex}"})
    kernel = build_kernel(raw, extra_plugins=[("ticking", ticking)])
    assert kernel.broker is not None
    asked = asyncio.Event()

    async def tenants_swallowing_the_cancel() -> list[str]:
        # What redis-py 8.1 does now and then inside a command: the CancelledError never reaches the ticker.
        asked.set()
        with suppress(asyncio.CancelledError):
            await asyncio.sleep(30)
        return []

    await kernel.broker.startup()
    try:
        block = periodic_per_tenant(kernel, "ticking.tick", 3600, tenants=tenants_swallowing_the_cancel)
        await block.__aenter__()
        await asyncio.wait_for(asked.wait(), 10)
        # Before the stop flag, the ticker went on to sleep for the whole hour, and leaving the block with it.
        leaving = asyncio.create_task(block.__aexit__(None, None, None))
        done, _ = await asyncio.wait([leaving], timeout=10)
        assert leaving in done, "the ticker did not stop when its block ended"
    finally:
        await kernel.broker.shutdown()
