"""The broker the taskiq worker runs (`kernel.worker:broker`): the same kernel and lifespan as the web process."""

import signal
from collections.abc import Callable
from contextlib import AsyncExitStack
from types import FrameType
from typing import Any

from taskiq import TaskiqEvents, TaskiqState

from kernel import tracing
from kernel.kernel import build_kernel
from kernel.logs import configure_logging
from kernel.queue import StreamBroker

configure_logging()  # before anything logs, so even build-time records are JSON and masked
kernel = build_kernel()
configure_logging(kernel.settings.log_level)
tracing.configure("worker")
if kernel.broker is None:
    raise RuntimeError("set SOKO_REDIS_URL: the worker has no queue to read")
broker = kernel.broker
_stack = AsyncExitStack()


def _stop_taking_work_first(previous: Any) -> Callable[[int, FrameType | None], None]:
    """taskiq's own handler (installed before this module is imported) stops its prefetcher, but a message read
    from Redis as the signal lands would still be run; the broker stops yielding first, so it is handed back."""

    def handler(signum: int, frame: FrameType | None) -> None:
        if isinstance(broker, StreamBroker):
            broker.stop_taking_work()
        if callable(previous):
            previous(signum, frame)

    return handler


for _number in (signal.SIGINT, signal.SIGTERM):
    signal.signal(_number, _stop_taking_work_first(signal.getsignal(_number)))


@broker.on_event(TaskiqEvents.WORKER_STARTUP)
async def _start(state: TaskiqState) -> None:
    await _stack.enter_async_context(kernel.running(worker=True, serving=True))


@broker.on_event(TaskiqEvents.WORKER_SHUTDOWN)
async def _stop(state: TaskiqState) -> None:
    await _stack.aclose()
