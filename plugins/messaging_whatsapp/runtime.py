"""What the plugin keeps per kernel (`kernel.state`): settings, the one Graph connection pool, the Redis pacing.

The pool and Redis open in the lifespan, in web and worker alike, and close with it.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass

import httpx
from pydantic import SecretStr

from kernel import Kernel, traced_transport
from plugins.messaging_whatsapp.credentials import WhatsAppCredentials
from plugins.messaging_whatsapp.pacing import Pacing
from plugins.messaging_whatsapp.settings import WhatsAppSettings

PLUGIN = "messaging_whatsapp"
CHANNEL = "whatsapp"
# What the simulator and soko sign and check webhooks with in `soko dev` when no app secret is set. Public on
# purpose, as auth's development keys are: it guards nothing but a simulator on loopback.
DEV_APP_SECRET = SecretStr("soko-dev-whatsapp-simulator-app-secret")


@dataclass
class WhatsApp:
    kernel: Kernel
    settings: WhatsAppSettings
    http: httpx.AsyncClient | None = None
    pacing: Pacing | None = None

    @property
    def app_secret(self) -> SecretStr | None:
        """The Meta app's secret; in development's simulator mode, the public stand-in when none is set."""
        if self.settings.app_secret is None and self.simulated_dev:
            return DEV_APP_SECRET
        return self.settings.app_secret

    @property
    def simulated_dev(self) -> bool:
        """`soko dev` against the simulator: nothing real is at stake."""
        return self.settings.mode == "simulator" and self.kernel.settings.env == "development"

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
    async with AsyncExitStack() as stack:
        stack.push_async_callback(runtime.http.aclose)
        if kernel.settings.redis_url is not None:
            runtime.pacing = Pacing(
                await stack.enter_async_context(kernel.redis_opened()),
                prefix=f"soko:whatsapp:{kernel.settings.queue_name}",
                rate_per_second=settings.send_rate_per_second,
                pair_interval_seconds=settings.pair_interval_seconds,
            )
        try:
            yield
        finally:
            runtime.http = runtime.pacing = None
