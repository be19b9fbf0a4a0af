"""Auth's tables, all tenant-owned (the migration adds `tenant_id` and row-level security; RLS fills it).

The queries are SQL (`run`), for row locks and upserts; these classes bind the tables to the app role's engine
and document the columns.
"""

from __future__ import annotations

from typing import Any

from piccolo.columns import UUID, ForeignKey, Integer, OnDelete, Text, Timestamptz
from piccolo.table import Table


class Customer(Table, tablename="auth_customers"):
    """A storefront customer, created by their first verified code. `phone` is E.164, unique per tenant."""

    id = UUID(primary_key=True)
    phone = Text()
    created_at = Timestamptz()


class OtpCode(Table, tablename="auth_otp_codes"):
    """The one live sign-in code of a phone number: a new request replaces it."""

    id = UUID(primary_key=True)
    phone = Text()
    code_hash = Text()
    attempts = Integer(default=0)
    expires_at = Timestamptz()
    used_at = Timestamptz(null=True, default=None)
    created_at = Timestamptz()


class RefreshToken(Table, tablename="auth_refresh_tokens"):
    """One refresh token (by hash); each use replaces it by another of the same family."""

    id = UUID(primary_key=True)
    token_hash = Text(unique=True)
    family_id = UUID()
    customer = ForeignKey(references=Customer, on_delete=OnDelete.cascade)
    expires_at = Timestamptz()
    used_at = Timestamptz(null=True, default=None)
    revoked_at = Timestamptz(null=True, default=None)
    created_at = Timestamptz()


class StaffUser(Table, tablename="auth_staff"):
    """A member of a store's staff. `email` is unique per tenant, case-insensitively."""

    id = UUID(primary_key=True)
    email = Text()
    password_hash = Text(secret=True)
    role = Text()
    created_at = Timestamptz()


class StaffSession(Table, tablename="auth_sessions"):
    """A signed-in browser: the cookie holds the token, the table its hash."""

    id = UUID(primary_key=True)
    token_hash = Text(unique=True)
    staff = ForeignKey(references=StaffUser, on_delete=OnDelete.cascade)
    expires_at = Timestamptz()
    created_at = Timestamptz()


TABLES = [Customer, OtpCode, RefreshToken, StaffUser, StaffSession]


async def run(sql: str, *args: Any) -> list[dict[str, Any]]:
    """Run SQL (`{}` placeholders) in the current transaction: the request's, or a `tenant_transaction`."""
    return await Customer.raw(sql, *args)


async def one(sql: str, *args: Any) -> dict[str, Any] | None:
    rows = await run(sql, *args)
    return rows[0] if rows else None
