"""The messaging_whatsapp plugin's table of contents: the WhatsApp Cloud API channel (docs/messaging_whatsapp.md)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from contextlib import AbstractAsyncContextManager, AsyncExitStack, asynccontextmanager
from typing import Any
from urllib.parse import urlsplit

from quart import Blueprint

from kernel import (
    DeliveryStatus,
    InboundMessage,
    Kernel,
    MessagingChannel,
    PaidOrder,
    SettingsError,
    hookimpl,
    periodic_per_tenant,
)
from plugins.messaging_whatsapp import dev, events, jobs, receipts, simulator, views
from plugins.messaging_whatsapp.channel import WhatsAppChannel
from plugins.messaging_whatsapp.runtime import CHANNEL, PLUGIN, running, runtime_of
from plugins.messaging_whatsapp.settings import SIMULATOR_URL, WhatsAppSettings
from plugins.tenancy.public import list_tenants

requires = ["tenancy", "auth"]
SIMULATED_ENVIRONMENTS = frozenset({"development", "test"})


@hookimpl
def settings_model() -> type[WhatsAppSettings]:
    return WhatsAppSettings


@hookimpl
def register_messaging_channels(kernel: Kernel) -> list[MessagingChannel]:
    settings = runtime_of(kernel).settings
    problems = []
    if settings.mode == "simulator" and kernel.settings.env not in SIMULATED_ENVIRONMENTS:
        problems.append(
            f"plugins.messaging_whatsapp.mode: simulator is for development and test, not {kernel.settings.env!r}"
        )
    if kernel.settings.env not in SIMULATED_ENVIRONMENTS:
        for secret in ("app_secret", "verify_token"):
            if getattr(settings, secret) is None:
                variable = f"SOKO_PLUGINS__MESSAGING_WHATSAPP__{secret.upper()}"
                problems.append(f"plugins.messaging_whatsapp.{secret}: required; set {variable}")
    if problems:
        raise SettingsError(problems)
    return [WhatsAppChannel(kernel)]


@hookimpl
def lifespan(kernel: Kernel) -> AbstractAsyncContextManager[None]:
    return _lifespan(kernel)


@asynccontextmanager
async def _lifespan(kernel: Kernel) -> AsyncIterator[None]:
    async with AsyncExitStack() as stack:
        await stack.enter_async_context(running(kernel))
        interval = runtime_of(kernel).settings.sweep_interval_seconds
        await stack.enter_async_context(periodic_per_tenant(kernel, f"{PLUGIN}.sweep", interval, tenants=_tenant_ids))
        yield


async def _tenant_ids() -> list[str]:
    return [tenant.id for tenant in await list_tenants()]


@hookimpl
def register_tasks(kernel: Kernel) -> Mapping[str, Callable[..., Awaitable[Any]]]:
    return {"send": jobs.send_task(kernel), "sweep": jobs.sweep_task(kernel)}


@hookimpl
def register_blueprints(kernel: Kernel) -> list[Blueprint]:
    return [views.messages_blueprint()]


@hookimpl
def body_limits(kernel: Kernel) -> Mapping[str, int]:
    return {views.WEBHOOK_PATH: views.WEBHOOK_MAX_BYTES}


@hookimpl
def piccolo_app() -> str:
    return "plugins.messaging_whatsapp.piccolo_app"


@hookimpl
def dev_services(kernel: Kernel) -> AbstractAsyncContextManager[None] | None:
    """The Graph API simulator beside `soko dev`, posting its webhooks to this soko's one WhatsApp URL."""
    runtime = runtime_of(kernel)
    settings = runtime.settings
    if settings.mode != "simulator":
        return None
    if runtime.app_secret is None:
        raise SettingsError(["plugins.messaging_whatsapp.app_secret: the simulator signs its webhooks with it; set it"])
    address = urlsplit(settings.base_url or SIMULATOR_URL)
    return _simulated(
        address.hostname or "127.0.0.1",
        address.port or 80,
        runtime.app_secret.get_secret_value(),
        f"http://{kernel.settings.bind}/webhooks/whatsapp",
    )


@hookimpl
def dev_seed(kernel: Kernel) -> Awaitable[None] | None:
    """In simulator mode, the demo store's WhatsApp number at the simulator (kept if one is set already)."""
    return dev.seed_demo_number(kernel) if runtime_of(kernel).simulated_dev else None


@asynccontextmanager
async def _simulated(host: str, port: int, app_secret: str, webhook_url: str) -> AsyncIterator[None]:
    async with simulator.serve(host=host, port=port, app_secret=app_secret, webhook_url=webhook_url):
        yield


@hookimpl
def webhook_tenant(kernel: Kernel, receiver: str, event: object) -> Awaitable[str | None] | None:
    return events.tenant_of(kernel, event) if receiver == CHANNEL else None


@hookimpl
def message_received(kernel: Kernel, message: InboundMessage) -> Awaitable[None] | None:
    return events.received(kernel, message) if message.channel == CHANNEL else None


@hookimpl
def message_status(kernel: Kernel, status: DeliveryStatus) -> Awaitable[None] | None:
    return events.status_changed(kernel, status) if status.channel == CHANNEL else None


@hookimpl
def order_paid(kernel: Kernel, order: PaidOrder) -> Awaitable[None]:
    """The customer's receipt, when the shop has connected WhatsApp."""
    return receipts.on_order_paid(kernel, order)
