"""What the plugin keeps per kernel (`kernel.state`): settings, the one Graph connection pool, the Redis pacing.

The pool and Redis open in the lifespan, in web and worker alike, and close with it.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass

import httpx
from redis.asyncio import Redis

from kernel import Kernel, traced_transport
from plugins.messaging_whatsapp.credentials import WhatsAppCredentials
from plugins.messaging_whatsapp.pacing import Pacing
from plugins.messaging_whatsapp.settings import WhatsAppSettings

PLUGIN = "messaging_whatsapp"
CHANNEL = "whatsapp"


@dataclass
class WhatsApp:
    kernel: Kernel
    settings: WhatsAppSettings
    http: httpx.AsyncClient | None = None
    pacing: Pacing | None = None

    def client(self) -> httpx.AsyncClient:
        if self.http is None:
            raise RuntimeError("messaging_whatsapp is not running: its lifespan opens the Graph pool")
        return self.http

    def pacer(self) -> Pacing:
        if self.pacing is None:
            raise RuntimeError("messaging_whatsapp needs Redis (SOKO_REDIS_URL) to pace sends across processes")
        return self.pacing

    async def credentials(self, tenant_id: str) -> WhatsAppCredentials | None:
        """The shop's account from the kernel's credential store; None when it has not connected WhatsApp."""
        found = await self.kernel.credentials.get(tenant_id, CHANNEL)
        if found is None:
            return None
        assert isinstance(found, WhatsAppCredentials)
        return found


def runtime_of(kernel: Kernel) -> WhatsApp:
    return kernel.state(PLUGIN, lambda kernel: WhatsApp(kernel, kernel.settings_of(PLUGIN, WhatsAppSettings)))


@asynccontextmanager
async def running(kernel: Kernel) -> AsyncIterator[None]:
    runtime = runtime_of(kernel)
    settings = runtime.settings
    runtime.http = httpx.AsyncClient(
        base_url=settings.graph_url,
        timeout=httpx.Timeout(settings.timeout_seconds, connect=min(5.0, settings.timeout_seconds)),
        transport=traced_transport(
            limits=httpx.Limits(max_connections=settings.max_connections, max_keepalive_connections=20)
        ),
    )
    redis = None
    if kernel.settings.redis_url is not None:
        redis = Redis.from_url(kernel.settings.redis_url.get_secret_value())
        runtime.pacing = Pacing(
            redis,
            prefix=f"soko:whatsapp:{kernel.settings.queue_name}",
            rate_per_second=settings.send_rate_per_second,
            pair_interval_seconds=settings.pair_interval_seconds,
        )
    try:
        yield
    finally:
        await runtime.http.aclose()
        runtime.http = runtime.pacing = None
        if redis is not None:
            await redis.aclose()
