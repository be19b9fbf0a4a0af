"""Tenants and staff users for tests, written straight into the tables of the built-in tenancy and auth plugins.

Tests make a fresh tenant per test (a new slug, so tests never see each other's rows) through the migration owner
(a superuser in tests), which row-level security does not hold back. Going through `soko tenants create` and
`soko users create` instead would start a process per tenant; the CLI itself is tested on its own.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from dataclasses import dataclass

import asyncpg
from argon2 import PasswordHasher

STAFF_PASSWORD = "correct horse battery staple"  # noqa: S105 - a test user's password, in test databases only
_HASHER = PasswordHasher()


@dataclass(frozen=True)
class TestTenant:
    """A tenant made for one test; `host` is how requests name it (`base_domains` holds `localhost` in tests)."""

    __test__ = False  # not a test class, whatever pytest guesses from the name

    id: str
    slug: str

    @property
    def host(self) -> str:
        return f"{self.slug}.localhost"


async def create_tenant(
    superuser: asyncpg.Connection, *, prefix: str = "t", status: str = "active", domains: Iterable[str] = ()
) -> TestTenant:
    """A tenant with a fresh slug (`prefix` + 12 hex digits), named after it, with custom `domains`."""
    slug = f"{prefix}{uuid.uuid4().hex[:12]}"
    tenant_id = await superuser.fetchval(
        "INSERT INTO tenants (slug, name, status) VALUES ($1, $2, $3) RETURNING id::text", slug, slug.upper(), status
    )
    for domain in domains:
        await superuser.execute("INSERT INTO tenant_domains (domain, tenant) VALUES ($1, $2)", domain, tenant_id)
    return TestTenant(tenant_id, slug)


async def create_staff(
    superuser: asyncpg.Connection,
    tenant: TestTenant,
    *,
    email: str | None = None,
    role: str = "staff",
    password: str = STAFF_PASSWORD,
) -> tuple[str, str]:
    """A staff user (`staff` or `owner`) of `tenant` who signs in at POST /auth/login; their (id, e-mail)."""
    email = email or f"staff-{uuid.uuid4().hex[:8]}@{tenant.host}"
    staff_id = await superuser.fetchval(
        "INSERT INTO auth_staff (tenant_id, email, password_hash, role) VALUES ($1::uuid, $2, $3, $4) "
        "RETURNING id::text",
        tenant.id,
        email,
        _HASHER.hash(password),
        role,
    )
    return staff_id, email
