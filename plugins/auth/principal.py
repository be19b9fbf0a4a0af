"""Who the current request acts for: set by the AUTH middleware, read by views and by `public.require_staff`."""

from __future__ import annotations

from contextvars import ContextVar
from dataclasses import dataclass
from enum import StrEnum


class Role(StrEnum):
    """A customer signs in with a code; staff with a password, as owner (manages staff) or staff."""

    CUSTOMER = "customer"
    STAFF = "staff"
    OWNER = "owner"

    @property
    def is_staff(self) -> bool:
        return self in (Role.STAFF, Role.OWNER)


@dataclass(frozen=True)
class Principal:
    """An authenticated user of one tenant, and how they proved it (`session_id` for a cookie session)."""

    user_id: str
    tenant_id: str
    role: Role
    session_id: str | None = None


principal_var: ContextVar[Principal | None] = ContextVar("soko_auth_principal", default=None)


def current_principal() -> Principal | None:
    """The authenticated user of this request, or None for an anonymous one."""
    return principal_var.get()
