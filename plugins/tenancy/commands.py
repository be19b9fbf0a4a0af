"""`soko tenants`: the operator's commands, the same operations as the admin API, run as the app role.

Each command starts the kernel (pool, role check, the plugin's lifespan), runs one registry operation, and
announces the change, so running servers see it at once.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from typing import TypeVar

import click
from pydantic import TypeAdapter, ValidationError

from kernel import Kernel, Problem, Slug
from plugins.tenancy import registry
from plugins.tenancy.records import TenantInfo, TenantStatus

T = TypeVar("T")
_SLUG = TypeAdapter(Slug)


def tenants_group(kernel: Kernel) -> click.Group:
    @click.group("tenants")
    def tenants() -> None:
        """Create, list and suspend tenants, and manage their custom domains."""

    @tenants.command("create")
    @click.argument("slug")
    @click.option("--name", required=True, help="the store's display name")
    @click.option("--domain", "domains", multiple=True, help="a custom domain (repeatable)")
    def create(slug: str, name: str, domains: tuple[str, ...]) -> None:
        """Create a tenant reachable as SLUG.<base domain> and at each --domain."""
        _show(_run(kernel, lambda: registry.create(kernel, _slug(slug), name, domains)))

    @tenants.command("list")
    @click.option("--json", "as_json", is_flag=True, help="machine-readable output")
    def list_(as_json: bool) -> None:
        """Every tenant: id, slug, status, name and domains."""
        found = _run(kernel, registry.list_all)
        if as_json:
            click.echo(json.dumps([tenant.model_dump(mode="json") for tenant in found], indent=2))
            return
        for tenant in found:
            _show(tenant)

    @tenants.command("suspend")
    @click.argument("tenant")
    def suspend(tenant: str) -> None:
        """Refuse TENANT's requests (403 tenant_suspended) from now on, in every process; its data stays."""
        _show(_run(kernel, lambda: registry.update(kernel, tenant, status=TenantStatus.SUSPENDED)))

    @tenants.command("activate")
    @click.argument("tenant")
    def activate(tenant: str) -> None:
        """Serve a suspended TENANT again."""
        _show(_run(kernel, lambda: registry.update(kernel, tenant, status=TenantStatus.ACTIVE)))

    @tenants.command("add-domain")
    @click.argument("tenant")
    @click.argument("domain")
    def add_domain(tenant: str, domain: str) -> None:
        """Serve TENANT at DOMAIN too (point the domain's DNS at soko)."""
        _show(_run(kernel, lambda: registry.add_domain(kernel, tenant, domain)))

    @tenants.command("remove-domain")
    @click.argument("tenant")
    @click.argument("domain")
    def remove_domain(tenant: str, domain: str) -> None:
        """Stop serving TENANT at DOMAIN."""
        _show(_run(kernel, lambda: registry.remove_domain(kernel, tenant, domain)))

    return tenants


def _run(kernel: Kernel, operation: Callable[[], Awaitable[T]]) -> T:
    """Run one operation with the kernel started; a problem becomes a one-line error and exit status 1."""

    async def started() -> T:
        async with kernel.running():
            return await operation()

    try:
        return asyncio.run(started())
    except Problem as problem:
        raise click.ClickException(f"{problem.code}: {problem.detail}") from None


def _slug(text: str) -> str:
    try:
        return _SLUG.validate_python(text)
    except ValidationError as error:
        reason = error.errors()[0]["msg"]
        raise click.ClickException(f"validation_error: {text!r} is not a usable slug ({reason})") from None


def _show(tenant: TenantInfo) -> None:
    domains = ", ".join(tenant.domains) or "-"
    click.echo(f"{tenant.id}  {tenant.slug:<24} {tenant.status.value:<9} {tenant.name}  domains: {domains}")
