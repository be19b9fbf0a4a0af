"""The payments plugin's table of contents: every hook it implements, each handing off to a module of its own."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from contextlib import AbstractAsyncContextManager
from typing import Any

from quart import Blueprint

from kernel import Kernel, PaymentEvent, hookimpl
from plugins.payments import events, push, reconcile
from plugins.payments.routes import payments_blueprint
from plugins.payments.settings import PaymentsSettings

# commerce: intents pay its orders (amounts come from them, success marks them paid); auth: the refunds list is
# staff-only.
requires = ["tenancy", "commerce", "auth"]


@hookimpl
def settings_model() -> type[PaymentsSettings]:
    return PaymentsSettings


@hookimpl
def piccolo_app() -> str:
    return "plugins.payments.piccolo_app"


@hookimpl
def register_blueprints(kernel: Kernel) -> list[Blueprint]:
    return [payments_blueprint()]


@hookimpl
def register_tasks(kernel: Kernel) -> Mapping[str, Callable[..., Awaitable[Any]]]:
    return {"push": push.push_task(kernel), "reconcile": reconcile.reconcile_task(kernel)}


@hookimpl
def lifespan(kernel: Kernel) -> AbstractAsyncContextManager[None]:
    return reconcile.lifespan(kernel)


@hookimpl
def webhook_tenant(kernel: Kernel, receiver: str, event: object) -> Awaitable[str | None] | None:
    """The tenant whose intent the provider reference belongs to (stored when the push was accepted)."""
    if not isinstance(event, PaymentEvent):
        return None
    return kernel.webhook_routes.tenant_for(receiver, push.ROUTE_KIND, event.provider_ref)


@hookimpl
def payment_event(kernel: Kernel, event: PaymentEvent) -> Awaitable[None]:
    return events.on_payment_event(kernel, event)
