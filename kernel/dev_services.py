"""The stand-in services plugins run beside `soko dev` (a PSP's simulator), via the `dev_services` hook.

`soko dev` supervises its processes synchronously, so the plugins' async context managers get an event loop of
their own on a background thread: entered before web and worker start, exited after they stopped.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from contextlib import AsyncExitStack, contextmanager

from kernel.kernel import Kernel

START_TIMEOUT_SECONDS = 30.0


@contextmanager
def dev_services(kernel: Kernel) -> Iterator[None]:
    """Run every enabled plugin's `dev_services` context while the block runs; a failure to start raises here."""
    managers = [manager for _, manager in kernel.call("dev_services", kernel=kernel) if manager is not None]
    if not managers:
        yield
        return
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, name="soko-dev-services", daemon=True)
    thread.start()
    stack = AsyncExitStack()

    async def enter() -> None:
        for manager in managers:
            await stack.enter_async_context(manager)

    try:
        asyncio.run_coroutine_threadsafe(enter(), loop).result(timeout=START_TIMEOUT_SECONDS)
        yield
    finally:
        asyncio.run_coroutine_threadsafe(stack.aclose(), loop).result(timeout=START_TIMEOUT_SECONDS)
        loop.call_soon_threadsafe(loop.stop)
        thread.join()
        loop.close()
