"""What the rest of the plugin knows of a tenant: a small immutable record for resolution, and the full view
that the admin API and the CLI show."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from pydantic import BaseModel


class TenantStatus(StrEnum):
    """A suspended tenant's requests are refused (403 `tenant_suspended`); its data stays untouched."""

    ACTIVE = "active"
    SUSPENDED = "suspended"


@dataclass(frozen=True, slots=True)
class TenantRecord:
    """A tenant as request resolution sees it. `id` is the UUID's canonical text, as `app.current_tenant` holds it."""

    id: str
    slug: str
    name: str
    status: TenantStatus


class TenantInfo(BaseModel):
    """A tenant with its custom domains, as the platform operator sees it."""

    id: str
    slug: str
    name: str
    status: TenantStatus
    domains: list[str]
    created_at: datetime
