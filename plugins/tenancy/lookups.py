"""The reads request resolution makes, one query each: a tenant by slug, by custom domain or by id.

They run as the app role with no tenant bound, which the registry's policies allow (see the migration).
"""

from __future__ import annotations

import uuid
from typing import Any

from plugins.tenancy.hosts import ClaimKind, HostClaim
from plugins.tenancy.records import TenantRecord, TenantStatus
from plugins.tenancy.tables import Tenant, TenantDomain

_COLUMNS = (Tenant.id, Tenant.slug, Tenant.name, Tenant.status)
_VIA_DOMAIN = tuple(getattr(TenantDomain.tenant, column._meta.name).as_alias(column._meta.name) for column in _COLUMNS)


async def tenant_by_claim(claim: HostClaim) -> TenantRecord | None:
    if claim.kind is ClaimKind.SLUG:
        return await tenant_by_slug(claim.value)
    return _first(await TenantDomain.select(*_VIA_DOMAIN).where(TenantDomain.domain == claim.value).first())


async def tenant_by_slug(slug: str) -> TenantRecord | None:
    return _first(await Tenant.select(*_COLUMNS).where(Tenant.slug == slug).first())


async def tenant_by_id(text: str) -> TenantRecord | None:
    """None for an unknown id and for text that is no UUID at all (without asking the database)."""
    try:
        tenant_id = uuid.UUID(text)
    except ValueError:
        return None
    return _first(await Tenant.select(*_COLUMNS).where(Tenant.id == tenant_id).first())


async def tenant_by_ref(ref: str) -> TenantRecord | None:
    """A tenant by id or, failing that, by slug: what operators type."""
    return await tenant_by_id(ref) or await tenant_by_slug(ref)


async def list_tenants() -> list[TenantRecord]:
    """Every tenant, by slug. Outside any tenant's transaction: inside one, the registry shows only that tenant."""
    return [_record(row) for row in await Tenant.select(*_COLUMNS).order_by(Tenant.slug)]


def _first(row: dict[str, Any] | None) -> TenantRecord | None:
    return None if row is None else _record(row)


def _record(row: dict[str, Any]) -> TenantRecord:
    return TenantRecord(id=str(row["id"]), slug=row["slug"], name=row["name"], status=TenantStatus(row["status"]))
