"""The tenancy plugin's table of contents: every hook it implements, each handing off to a module of its own."""

from __future__ import annotations

from collections.abc import Awaitable, Mapping
from contextlib import AbstractAsyncContextManager
from typing import Any

import click
from quart import Blueprint

from kernel import Kernel, RequestMiddleware, hookimpl, problem_responses, rule_as_path
from plugins.tenancy import admin, commands, lookups, registry, resolution, startup, storefront
from plugins.tenancy.directory import directory_for
from plugins.tenancy.resolution import TenancyMiddleware
from plugins.tenancy.settings import TenancySettings


@hookimpl
def settings_model() -> type[TenancySettings]:
    return TenancySettings


@hookimpl
def register_middleware(kernel: Kernel) -> list[RequestMiddleware]:
    return [TenancyMiddleware(directory_for(kernel), kernel.settings_of("tenancy", TenancySettings))]


@hookimpl
def register_blueprints(kernel: Kernel) -> list[Blueprint]:
    home = storefront.storefront_blueprint()
    has_admin_api = kernel.settings_of("tenancy", TenancySettings).admin_token is not None
    return [home, admin.admin_blueprint()] if has_admin_api else [home]


@hookimpl
def openapi_operation(kernel: Kernel, method: str, rule: str) -> Mapping[str, Any] | None:
    """Every tenant-bound operation can answer that no store is served at the address it was sent to."""
    if resolution.exempt_routes(kernel.settings_of("tenancy", TenancySettings))(rule_as_path(rule)):
        return None
    problems = {
        400: "`tenant_mismatch`: the tenant header names another store than the host",
        403: "`tenant_suspended`: the store is suspended",
        404: "`tenant_not_found`: no store is served at this address",
    }
    return {"responses": problem_responses(problems)}


@hookimpl
def piccolo_app() -> str:
    return "plugins.tenancy.piccolo_app"


@hookimpl
def lifespan(kernel: Kernel) -> AbstractAsyncContextManager[None]:
    return startup.lifespan(kernel)


@hookimpl
def register_commands(kernel: Kernel) -> list[click.Command]:
    return [commands.tenants_group(kernel)]


@hookimpl
def dev_seed(kernel: Kernel) -> Awaitable[str]:
    """The demo store, reachable as demo.localhost in development."""
    return registry.ensure_demo(kernel)


@hookimpl
async def tenant_ref(ref: str) -> str | None:
    """What `soko credentials set acme ...` means by `acme`: a tenant's id or slug."""
    record = await lookups.tenant_by_ref(ref)
    return None if record is None else record.id
