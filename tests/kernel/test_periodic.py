"""kernel.periodic against a real Redis: a ticker stops when its block ends, even if a library ate the cancel."""

from __future__ import annotations

import asyncio
import uuid
from contextlib import suppress
from pathlib import Path
from types import SimpleNamespace

import pytest

from kernel import hookimpl
from kernel import periodic as periodic_module
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
    kernel.serving = True  # as running(serving=True) sets it in the web app and the worker
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


async def test_leaving_the_block_does_not_wait_for_a_ticker_stuck_in_a_call(monkeypatch: pytest.MonkeyPatch) -> None:
    """A step that neither returns nor takes the cancel (a Redis call parked past its timeouts): the block is left
    after STOP_WAIT_S all the same, with a warning, instead of waiting for the step."""
    monkeypatch.setattr(periodic_module, "STOP_WAIT_S", 1.0)
    raw = RawSettings(Path.cwd(), "test", {"redis_url": REDIS_URL, "queue_name": f"soko-test-{uuid.uuid4().hex}"})
    kernel = build_kernel(raw, extra_plugins=[("ticking", ticking)])
    kernel.serving = True
    assert kernel.broker is not None
    asked = asyncio.Event()

    async def tenants_stuck() -> list[str]:
        asked.set()
        deadline = asyncio.get_running_loop().time() + 6  # then let go, so the test's loop can close
        while asyncio.get_running_loop().time() < deadline:
            with suppress(asyncio.CancelledError):
                await asyncio.sleep(deadline - asyncio.get_running_loop().time())
        return []

    await kernel.broker.startup()
    try:
        block = periodic_per_tenant(kernel, "ticking.tick", 3600, tenants=tenants_stuck)
        await block.__aenter__()
        await asyncio.wait_for(asked.wait(), 10)
        started = asyncio.get_running_loop().time()
        await asyncio.wait_for(block.__aexit__(None, None, None), 4)
        assert asyncio.get_running_loop().time() - started < 4
    finally:
        await kernel.broker.shutdown()
