"""The plugin's per-kernel parts: one HTTP pool and one Redis client per process, opened in the lifespan."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass

import httpx

from kernel import Kernel, traced_transport
from plugins.payments_mpesa.daraja import DarajaClient
from plugins.payments_mpesa.ledger import PushLedger
from plugins.payments_mpesa.settings import MpesaSettings
from plugins.payments_mpesa.tokens import TokenCache

NAME = "payments_mpesa"
REDIS_TIMEOUT_SECONDS = 2.0


@dataclass
class Connected:
    daraja: DarajaClient
    ledger: PushLedger


class MpesaRuntime:
    def __init__(self, kernel: Kernel) -> None:
        self.settings = kernel.settings_of(NAME, MpesaSettings)
        self._connected: Connected | None = None

    @property
    def connected(self) -> Connected:
        if self._connected is None:
            raise RuntimeError("payments_mpesa is not started: run inside kernel.running()")
        return self._connected


def runtime(kernel: Kernel) -> MpesaRuntime:
    return kernel.state(NAME, MpesaRuntime)


@asynccontextmanager
async def lifespan(kernel: Kernel) -> AsyncIterator[None]:
    if kernel.settings.redis_url is None:
        raise RuntimeError("payments_mpesa shares Daraja tokens in Redis: set SOKO_REDIS_URL")
    state = runtime(kernel)
    settings = state.settings
    timeout = httpx.Timeout(settings.read_timeout, connect=settings.connect_timeout)
    redis_options = {"socket_timeout": REDIS_TIMEOUT_SECONDS, "socket_connect_timeout": REDIS_TIMEOUT_SECONDS}
    prefix = kernel.settings.queue_name
    async with (
        kernel.redis_opened(**redis_options) as redis,
        httpx.AsyncClient(base_url=settings.daraja_url(), timeout=timeout, transport=traced_transport()) as http,
    ):
        tokens = TokenCache(redis, prefix, refresh_early=settings.token_refresh_early, wait=settings.token_wait)
        state._connected = Connected(DarajaClient(http, tokens), PushLedger(redis, prefix, settings.idempotency_ttl))
        try:
            yield
        finally:
            state._connected = None
