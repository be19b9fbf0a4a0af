"""The outbox plugin's table of contents: a messaging channel that keeps messages instead of sending them."""

from __future__ import annotations

import click
from quart import Blueprint

from kernel import Kernel, MessagingChannel, SettingsError, hookimpl
from plugins.outbox import commands, views
from plugins.outbox.channel import OutboxChannel
from plugins.outbox.settings import OutboxSettings

requires = ["tenancy"]
ENVIRONMENTS = frozenset({"development", "test"})


@hookimpl
def settings_model() -> type[OutboxSettings]:
    return OutboxSettings


@hookimpl
def register_messaging_channels(kernel: Kernel) -> list[MessagingChannel]:
    if kernel.settings.env not in ENVIRONMENTS:
        raise SettingsError(
            [
                f"plugins.enabled: outbox keeps messages (sign-in codes too) unsent; it runs in development and test "
                f"only, not in {kernel.settings.env!r}"
            ]
        )
    return [OutboxChannel(kernel, kernel.settings_of("outbox", OutboxSettings))]


@hookimpl
def register_blueprints(kernel: Kernel) -> list[Blueprint]:
    return [views.outbox_blueprint()] if kernel.settings.env == "development" else []


@hookimpl
def piccolo_app() -> str:
    return "plugins.outbox.piccolo_app"


@hookimpl
def register_commands(kernel: Kernel) -> list[click.Command]:
    return [commands.outbox_command(kernel)]
