"""The auth plugin's table of contents: every hook it implements, each handing off to a module of its own."""

from __future__ import annotations

from collections.abc import Awaitable, Mapping
from typing import Any

import click
from quart import Blueprint

from kernel import Kernel, RequestMiddleware, RoutePatterns, hookimpl
from plugins.auth import checks, commands, demo, openapi, views
from plugins.auth.middleware import AuthMiddleware
from plugins.auth.runtime import auth_of
from plugins.auth.settings import AuthSettings

requires = ["tenancy"]


@hookimpl
def settings_model() -> type[AuthSettings]:
    return AuthSettings


@hookimpl
def register_middleware(kernel: Kernel) -> list[RequestMiddleware]:
    return [AuthMiddleware(auth_of(kernel))]


@hookimpl
def register_blueprints(kernel: Kernel) -> list[Blueprint]:
    return [views.auth_blueprint()]


@hookimpl
def openapi_operation(kernel: Kernel, method: str, rule: str) -> Mapping[str, Any] | None:
    return openapi.security_for(RoutePatterns(auth_of(kernel).settings.admin_routes), method, rule)


@hookimpl
def check_kernel(kernel: Kernel) -> list[str]:
    return checks.problems(kernel)


@hookimpl
def piccolo_app() -> str:
    return "plugins.auth.piccolo_app"


@hookimpl
def register_commands(kernel: Kernel) -> list[click.Command]:
    return [commands.users_group(kernel)]


@hookimpl
def dev_seed(kernel: Kernel) -> Awaitable[str]:
    """The demo store's owner, with a password made fresh on every start (soko dev prints it)."""
    return demo.seed(kernel)
