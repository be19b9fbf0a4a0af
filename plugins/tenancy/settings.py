"""`plugins.tenancy`: how a request finds its tenant (config/tenancy.yaml; docs/tenancy.md explains each key)."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator

from kernel import check_route_pattern
from plugins.tenancy.hosts import normalize_domain


class TenancySettings(BaseModel):
    model_config = ConfigDict(extra="forbid")

    # `{slug}.{base}` is the tenant `slug`, for each of these domains (`localhost` in development).
    base_domains: list[str] = Field(default_factory=list)
    # Labels under a base domain that are never a tenant (the platform's own hosts: www, the API host).
    reserved_slugs: list[str] = Field(default_factory=lambda: ["www", "api", "admin"])
    # A tenant's id in this header names the tenant, on the routes below only, when the host names none.
    header: str = Field(default="X-Tenant-ID", pattern=r"^[A-Za-z0-9-]{1,64}$")
    header_routes: list[str] = Field(default_factory=lambda: ["/admin/*", "/api/*"])
    # Routes that need no tenant: health, metrics, the API document, webhooks that find their tenant in the payload.
    exempt_routes: list[str] = Field(
        default_factory=lambda: ["/healthz", "/readyz", "/metrics", "/openapi.json", "/docs", "/docs/*", "/webhooks/*"]
    )
    # How long a process trusts what it cached about a host or id; changes reach every process at once via Redis.
    cache_ttl_seconds: float = Field(default=60.0, gt=0, le=3600)
    cache_max_entries: int = Field(default=10_000, ge=1)
    # The platform operator's token for the admin API (`Authorization: Bearer ...`). Unset: no admin API.
    admin_token: SecretStr | None = None

    @field_validator("base_domains")
    @classmethod
    def _domains(cls, value: list[str]) -> list[str]:
        return [normalize_domain(domain, allow_single_label=True) for domain in value]

    @field_validator("admin_token")
    @classmethod
    def _strong(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None and len(value.get_secret_value()) < 32:
            raise ValueError("must be at least 32 characters (for example `openssl rand -hex 32`)")
        return value

    @field_validator("reserved_slugs")
    @classmethod
    def _lower(cls, value: list[str]) -> list[str]:
        return [slug.lower() for slug in value]

    @field_validator("header_routes", "exempt_routes")
    @classmethod
    def _paths(cls, value: list[str]) -> list[str]:
        return [check_route_pattern(pattern) for pattern in value]
