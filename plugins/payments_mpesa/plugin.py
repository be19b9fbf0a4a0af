"""The payments_mpesa plugin's table of contents: every hook it implements, each handing off to a module."""

from __future__ import annotations

from collections.abc import Awaitable
from contextlib import AbstractAsyncContextManager

import click

from kernel import Kernel, PaymentEvent, PaymentProvider, SettingsError, hookimpl
from plugins.payments_mpesa import commands, dev, runtime
from plugins.payments_mpesa.provider import PROVIDER, MpesaProvider
from plugins.payments_mpesa.settings import MpesaSettings, startup_problems


@hookimpl
def settings_model() -> type[MpesaSettings]:
    return MpesaSettings


@hookimpl
def register_payment_providers(kernel: Kernel) -> list[PaymentProvider]:
    problems = startup_problems(runtime.runtime(kernel).settings, kernel.settings.env)
    if problems:
        raise SettingsError(problems)
    return [MpesaProvider(kernel)]


@hookimpl
def lifespan(kernel: Kernel) -> AbstractAsyncContextManager[None]:
    return runtime.lifespan(kernel)


@hookimpl
def webhook_tenant(kernel: Kernel, receiver: str, event: object) -> Awaitable[str | None] | None:
    """A C2B payment names the shop by its shortcode, the credentials' routing key."""
    if receiver != PROVIDER or not isinstance(event, PaymentEvent) or event.tenant_hint is None:
        return None
    return kernel.credentials.tenant_for(PROVIDER, event.tenant_hint)


@hookimpl
def dev_services(kernel: Kernel) -> AbstractAsyncContextManager[None] | None:
    return dev.simulator(kernel)


@hookimpl
def register_commands(kernel: Kernel) -> list[click.Command]:
    return [commands.mpesa_command(kernel)]
