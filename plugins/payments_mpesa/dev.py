"""What `soko dev` runs for this plugin: the Daraja simulator, when simulator mode points at it."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import AbstractAsyncContextManager, asynccontextmanager

from kernel import Kernel
from plugins.payments_mpesa.runtime import runtime
from plugins.payments_mpesa.settings import Mode
from plugins.payments_mpesa.simulator import DarajaSimulator

log = logging.getLogger(__name__)


def simulator(kernel: Kernel) -> AbstractAsyncContextManager[None] | None:
    settings = runtime(kernel).settings
    if settings.mode is not Mode.SIMULATOR or settings.base_url is not None:
        return None
    return _serving(settings.simulator_port)


@asynccontextmanager
async def _serving(port: int) -> AsyncIterator[None]:
    async with DarajaSimulator().serve(port=port) as url:
        log.info("Daraja simulator listening (payments_mpesa simulator mode)", extra={"url": url})
        yield
