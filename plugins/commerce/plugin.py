"""The commerce plugin's table of contents: every hook it implements, each handing off to a module of its own."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from contextlib import AbstractAsyncContextManager
from typing import Any

import click
from quart import Blueprint

from kernel import Kernel, hookimpl
from plugins.commerce import commands, demo, expiry
from plugins.commerce.routes import commerce_blueprint
from plugins.commerce.settings import CommerceSettings

requires = ["tenancy", "auth"]  # auth: only staff of the store may run its /admin/* routes


@hookimpl
def settings_model() -> type[CommerceSettings]:
    return CommerceSettings


@hookimpl
def register_blueprints(kernel: Kernel) -> list[Blueprint]:
    return [commerce_blueprint()]


@hookimpl
def piccolo_app() -> str:
    return "plugins.commerce.piccolo_app"


@hookimpl
def register_tasks(kernel: Kernel) -> Mapping[str, Callable[..., Awaitable[Any]]]:
    return {"expire_reservations": expiry.expire_task(kernel)}


@hookimpl
def lifespan(kernel: Kernel) -> AbstractAsyncContextManager[None]:
    return expiry.lifespan(kernel)


@hookimpl
def register_commands(kernel: Kernel) -> list[click.Command]:
    return [commands.products_group(kernel)]


@hookimpl
def dev_seed(kernel: Kernel) -> Awaitable[str]:
    """The demo store's catalogue."""
    return demo.seed(kernel)
