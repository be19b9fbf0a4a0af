"""The tenant registry's operations, shared by the admin API, the CLI and `soko dev`'s seed.

Each runs as the app role with no tenant bound. Reads are plain queries; writes go through the registry's
SECURITY DEFINER functions (`soko_tenant_*`), the only way to write it: the app role has no direct write, so no
other statement of the web process can suspend or re-point a store (see the 2026-12-03 tenancy migration). Every
write announces the tenant once it committed, so every process drops what it cached.
Errors are problems with stable codes: the API returns them, the CLI prints their detail.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from typing import Any

import asyncpg

from kernel import Kernel, Problem
from plugins.tenancy import changes, lookups
from plugins.tenancy.directory import directory_for
from plugins.tenancy.hosts import SLUG, normalize_domain
from plugins.tenancy.records import TenantInfo, TenantStatus
from plugins.tenancy.tables import Tenant, TenantDomain

_TAKEN = {
    "tenants_slug_key": ("slug_taken", "Another tenant has this slug."),
    "tenant_domains_pkey": ("domain_taken", "This domain is already registered to a tenant."),
}


async def get(ref: str) -> TenantInfo:
    """A tenant with its domains, by id or slug; 404 `not_found` if there is none."""
    record = await lookups.tenant_by_ref(ref)
    if record is None:
        raise Problem(404, "not_found", "No tenant has this id or slug.")
    return (await _infos(uuid.UUID(record.id)))[0]


async def list_all() -> list[TenantInfo]:
    return await _infos(None)


# One statement: the function writes the tenant and its domains together or not at all.
_CREATE = "SELECT soko_tenant_create({}, {}, {}::text[])::text AS id"


async def create(kernel: Kernel, slug: str, name: str, domains: Sequence[str] = ()) -> TenantInfo:
    checked = [_checked_domain(kernel, domain) for domain in domains]
    rows = await _writing(Tenant.raw(_CREATE, _checked_slug(kernel, slug), name, checked))
    return await _changed(kernel, rows[0]["id"])


async def ensure(kernel: Kernel, slug: str, name: str) -> TenantInfo:
    """The tenant with this slug, created if missing: safe to run on every start."""
    existing = await lookups.tenant_by_slug(slug)
    return await get(existing.id) if existing is not None else await create(kernel, slug, name)


DEMO_STORE = "demo"


async def ensure_demo(kernel: Kernel) -> str:
    """The demo store `soko dev` serves, and the line it prints about it (its id is what /docs sends)."""
    tenant = await ensure(kernel, DEMO_STORE, "Demo store")
    return f"demo store: Host: {tenant.slug}.localhost (or X-Tenant-ID: {tenant.id} on /docs)"


async def update(
    kernel: Kernel, ref: str, *, name: str | None = None, status: TenantStatus | None = None
) -> TenantInfo:
    tenant = await get(ref)
    if name is None and status is None:
        return tenant
    await Tenant.raw("SELECT soko_tenant_update({}::uuid, {}, {})", tenant.id, name, status and str(status))
    return await _changed(kernel, tenant.id)


async def add_domain(kernel: Kernel, ref: str, domain: str) -> TenantInfo:
    tenant = await get(ref)
    await _writing(
        Tenant.raw("SELECT soko_tenant_add_domain({}::uuid, {})", tenant.id, _checked_domain(kernel, domain))
    )
    return await _changed(kernel, tenant.id)


async def remove_domain(kernel: Kernel, ref: str, domain: str) -> TenantInfo:
    tenant = await get(ref)
    removed = await Tenant.raw(
        "SELECT soko_tenant_remove_domain({}::uuid, {}) AS removed", tenant.id, domain.strip().lower()
    )
    if not removed[0]["removed"]:
        raise Problem(404, "not_found", "This tenant has no such domain.")
    return await _changed(kernel, tenant.id)


async def _changed(kernel: Kernel, tenant_id: str) -> TenantInfo:
    await changes.announce(kernel, tenant_id)
    return await get(tenant_id)


async def _infos(tenant_id: uuid.UUID | None) -> list[TenantInfo]:
    """Every tenant (or the one with `tenant_id`) with its domains: two queries, however many tenants."""
    tenants = Tenant.select().order_by(Tenant.created_at, Tenant.slug)
    domains = TenantDomain.select(TenantDomain.domain, TenantDomain.tenant).order_by(TenantDomain.domain)
    if tenant_id is not None:
        tenants = tenants.where(Tenant.id == tenant_id)
        domains = domains.where(TenantDomain.tenant == tenant_id)
    by_tenant: dict[str, list[str]] = {}
    for row in await domains:
        by_tenant.setdefault(str(row["tenant"]), []).append(row["domain"])
    return [
        TenantInfo.model_validate(row | {"id": str(row["id"]), "domains": by_tenant.get(str(row["id"]), [])})
        for row in await tenants
    ]


async def _writing(query: Any) -> Any:
    """Run a write; a unique slug or domain already taken is the client's 409, with a code saying which."""
    try:
        return await query
    except asyncpg.UniqueViolationError as error:
        code, detail = _TAKEN.get(error.constraint_name or "", ("conflict", "This conflicts with an existing tenant."))
        raise Problem(409, code, detail) from None


def _checked_slug(kernel: Kernel, slug: str) -> str:
    if not SLUG.fullmatch(slug):
        raise Problem(400, "validation_error", "A slug is 1 to 63 lower-case letters, digits and inner hyphens.")
    if slug in directory_for(kernel).rules.reserved_slugs:
        raise Problem(400, "validation_error", f"The slug {slug!r} is reserved for the platform.")
    return slug


def _checked_domain(kernel: Kernel, domain: str) -> str:
    try:
        normalized = normalize_domain(domain)
    except ValueError as error:
        raise Problem(400, "validation_error", str(error)) from None
    if directory_for(kernel).rules.under_base_domain(normalized):
        raise Problem(400, "validation_error", "Hosts under a base domain are slugs, not custom domains.")
    return normalized
