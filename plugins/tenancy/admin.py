"""The platform operator's admin API under `/tenancy`: list, create, rename, suspend tenants; manage domains.

It exists only when `admin_token` is set, and every call must present it (`Authorization: Bearer <token>`),
compared in constant time. It is the platform's, not a tenant's: its routes are always exempt from resolution
and run with no tenant bound. The auth plugin may later replace the token with platform-admin users.
"""

from __future__ import annotations

import hmac

from pydantic import BaseModel, Field
from quart import Blueprint, request

from kernel import CleanStr, Model, Problem, Slug, current_kernel, validate_request, validate_response
from plugins.tenancy import registry
from plugins.tenancy.records import TenantInfo, TenantStatus
from plugins.tenancy.settings import TenancySettings

PREFIX = "/tenancy"


class TenantCreate(Model):
    slug: Slug
    name: CleanStr = Field(min_length=1, max_length=200)
    domains: list[str] = Field(default_factory=list, max_length=20)


class TenantUpdate(Model):
    name: CleanStr | None = Field(default=None, min_length=1, max_length=200)
    status: TenantStatus | None = None


class DomainAdd(Model):
    domain: str = Field(min_length=1, max_length=253)


class TenantList(BaseModel):
    tenants: list[TenantInfo]


def admin_blueprint() -> Blueprint:
    """A fresh blueprint per app (blueprints remember the apps they were registered on)."""
    blueprint = Blueprint("tenancy", __name__, url_prefix=PREFIX)
    blueprint.before_request(require_platform_token)
    blueprint.add_url_rule("/tenants", view_func=list_tenants, methods=["GET"])
    blueprint.add_url_rule("/tenants", view_func=create_tenant, methods=["POST"])
    blueprint.add_url_rule("/tenants/<ref>", view_func=get_tenant, methods=["GET"])
    blueprint.add_url_rule("/tenants/<ref>", view_func=update_tenant, methods=["PATCH"])
    blueprint.add_url_rule("/tenants/<ref>/domains", view_func=add_domain, methods=["POST"])
    blueprint.add_url_rule("/tenants/<ref>/domains/<domain>", view_func=remove_domain, methods=["DELETE"])
    return blueprint


async def require_platform_token() -> None:
    settings = current_kernel().settings_of("tenancy", TenancySettings)
    assert settings.admin_token is not None  # else the blueprint is not registered
    scheme, _, offered = request.headers.get("Authorization", "").partition(" ")
    expected = settings.admin_token.get_secret_value()
    if scheme.lower() != "bearer" or not hmac.compare_digest(offered.encode(), expected.encode()):
        raise Problem(
            401,
            "unauthorized",
            "The admin API needs the platform admin token.",
            headers={"WWW-Authenticate": 'Bearer realm="soko-platform"'},
        )


@validate_response(TenantList)
async def list_tenants() -> TenantList:
    """Every tenant with its domains."""
    return TenantList(tenants=await registry.list_all())


@validate_request(TenantCreate)
@validate_response(TenantInfo, 201)
async def create_tenant(data: TenantCreate) -> tuple[TenantInfo, int]:
    """Create a tenant; 409 `slug_taken` or `domain_taken` when another tenant has them."""
    return await registry.create(current_kernel(), data.slug, data.name, data.domains), 201


@validate_response(TenantInfo)
async def get_tenant(ref: str) -> TenantInfo:
    """One tenant, by id or slug."""
    return await registry.get(ref)


@validate_request(TenantUpdate)
@validate_response(TenantInfo)
async def update_tenant(ref: str, data: TenantUpdate) -> TenantInfo:
    """Rename a tenant, or suspend or reactivate it; every process sees the change at once."""
    return await registry.update(current_kernel(), ref, name=data.name, status=data.status)


@validate_request(DomainAdd)
@validate_response(TenantInfo, 201)
async def add_domain(ref: str, data: DomainAdd) -> tuple[TenantInfo, int]:
    """Register a custom domain for a tenant."""
    return await registry.add_domain(current_kernel(), ref, data.domain), 201


@validate_response(TenantInfo)
async def remove_domain(ref: str, domain: str) -> TenantInfo:
    """Unregister one of a tenant's custom domains."""
    return await registry.remove_domain(current_kernel(), ref, domain)
