"""The broker the taskiq worker runs (`kernel.worker:broker`): the same kernel and lifespan as the web process."""

from contextlib import AsyncExitStack

from taskiq import TaskiqEvents, TaskiqState

from kernel import tracing
from kernel.kernel import build_kernel
from kernel.logs import configure_logging

configure_logging()  # before anything logs, so even build-time records are JSON and masked
kernel = build_kernel()
configure_logging(kernel.settings.log_level)
tracing.configure("worker")
if kernel.broker is None:
    raise RuntimeError("set SOKO_REDIS_URL: the worker has no queue to read")
broker = kernel.broker
_stack = AsyncExitStack()


@broker.on_event(TaskiqEvents.WORKER_STARTUP)
async def _start(state: TaskiqState) -> None:
    await _stack.enter_async_context(kernel.running(worker=True))


@broker.on_event(TaskiqEvents.WORKER_SHUTDOWN)
async def _stop(state: TaskiqState) -> None:
    await _stack.aclose()
