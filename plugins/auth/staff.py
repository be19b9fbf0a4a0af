"""Staff accounts: create one (the CLI), and check an e-mail and password (the login route)."""

from __future__ import annotations

from dataclasses import dataclass

import asyncpg

from plugins.auth import hashing
from plugins.auth.principal import Role
from plugins.auth.tables import one, run

MIN_PASSWORD_CHARS = 12


class StaffExists(Exception):
    """The tenant already has a staff user with that e-mail address."""


@dataclass(frozen=True)
class StaffRecord:
    id: str
    email: str
    role: Role


async def create(email: str, password: str, role: Role) -> StaffRecord:
    """Add a staff user to the current tenant; the password is stored as an argon2id hash."""
    if len(password) < MIN_PASSWORD_CHARS:
        raise ValueError(f"the password must be at least {MIN_PASSWORD_CHARS} characters")
    try:
        row = await one(
            "INSERT INTO auth_staff (email, password_hash, role) VALUES ({}, {}, {}) RETURNING id::text",
            email,
            hashing.hash_password(password),
            role.value,
        )
    except asyncpg.UniqueViolationError:
        raise StaffExists(email) from None
    assert row is not None
    return StaffRecord(str(row["id"]), email, role)


async def reset(email: str, password: str, role: Role) -> StaffRecord:
    """Create the staff user, or give the existing one this password and role (the demo store's seed)."""
    if len(password) < MIN_PASSWORD_CHARS:
        raise ValueError(f"the password must be at least {MIN_PASSWORD_CHARS} characters")
    row = await one(
        "INSERT INTO auth_staff (email, password_hash, role) VALUES ({}, {}, {}) ON CONFLICT (tenant_id, lower(email)) "
        "DO UPDATE SET password_hash = EXCLUDED.password_hash, role = EXCLUDED.role RETURNING id::text",
        email,
        hashing.hash_password(password),
        role.value,
    )
    assert row is not None
    return StaffRecord(str(row["id"]), email, role)


async def authenticate(email: str, password: str) -> StaffRecord | None:
    """The staff user with this e-mail and password; unknown addresses cost the same argon2 work."""
    row = await one("SELECT id::text, email, role, password_hash FROM auth_staff WHERE lower(email) = lower({})", email)
    stored = row["password_hash"] if row else None
    if not hashing.password_matches(stored, password) or row is None:
        return None
    if hashing.needs_rehash(stored or ""):
        await run(
            "UPDATE auth_staff SET password_hash = {} WHERE id = {}::uuid", hashing.hash_password(password), row["id"]
        )
    return StaffRecord(row["id"], row["email"], Role(row["role"]))


async def list_all() -> list[StaffRecord]:
    rows = await run("SELECT id::text, email, role FROM auth_staff ORDER BY created_at, email")
    return [StaffRecord(row["id"], row["email"], Role(row["role"])) for row in rows]
