"""Rotating refresh tokens: each works once and is replaced by the next of its family.

A token presented a second time means someone holds a copy (the client or a thief, and we cannot tell which), so
the whole family is revoked: both must sign in again. Tokens are random and stored as SHA-256 hashes, looked up
by hash within the request's tenant (row-level security), so another store's token is simply not found.
"""

from __future__ import annotations

import logging
import uuid
from datetime import UTC, datetime, timedelta

from plugins.auth import hashing
from plugins.auth.runtime import Auth
from plugins.auth.tables import one, run

log = logging.getLogger("soko.auth")


async def issue(auth: Auth, customer_id: str, family_id: str | None = None) -> str:
    token = hashing.new_token()
    await run(
        "INSERT INTO auth_refresh_tokens (token_hash, family_id, customer, expires_at) VALUES ({}, {}, {}, {})",
        hashing.token_digest(token),
        uuid.UUID(family_id) if family_id else uuid.uuid4(),
        uuid.UUID(customer_id),
        datetime.now(UTC) + timedelta(seconds=auth.settings.refresh_ttl_seconds),
    )
    return token


async def rotate(auth: Auth, token: str) -> tuple[str, str] | None:
    """Spend `token`: the customer id and its successor, or None (and on reuse, the family revoked)."""
    row = await one(
        "SELECT id, family_id::text, customer::text, expires_at, used_at, revoked_at FROM auth_refresh_tokens "
        "WHERE token_hash = {} FOR UPDATE",
        hashing.token_digest(token),
    )
    if row is None or row["revoked_at"] is not None or row["expires_at"] <= datetime.now(UTC):
        return None
    if row["used_at"] is not None:
        await revoke_family(row["family_id"])
        log.warning("refresh token reused: family revoked", extra={"family_id": row["family_id"]})
        return None
    await run("UPDATE auth_refresh_tokens SET used_at = now() WHERE id = {}", row["id"])
    return row["customer"], await issue(auth, row["customer"], row["family_id"])


async def revoke(token: str, customer_id: str) -> None:
    """Sign out: revoke the family of `token` when it is the caller's own."""
    row = await one(
        "SELECT family_id::text FROM auth_refresh_tokens WHERE token_hash = {} AND customer = {}",
        hashing.token_digest(token),
        uuid.UUID(customer_id),
    )
    if row is not None:
        await revoke_family(row["family_id"])


async def revoke_family(family_id: str) -> None:
    await run(
        "UPDATE auth_refresh_tokens SET revoked_at = now() WHERE family_id = {} AND revoked_at IS NULL",
        uuid.UUID(family_id),
    )
