"""Server-side staff sessions: the cookie holds a random token, the table its SHA-256 hash and expiry.

Logging out deletes the row, so the old cookie stops working at once, in every process.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

from plugins.auth import hashing
from plugins.auth.principal import Principal, Role
from plugins.auth.runtime import Auth
from plugins.auth.tables import one, run


async def start(auth: Auth, staff_id: str) -> str:
    """A new session for `staff_id`; returns the token for the cookie."""
    token = hashing.new_token()
    await run(
        "INSERT INTO auth_sessions (token_hash, staff, expires_at) VALUES ({}, {}, {})",
        hashing.token_digest(token),
        uuid.UUID(staff_id),
        datetime.now(UTC) + timedelta(seconds=auth.settings.session_ttl_seconds),
    )
    return token


async def principal_for(token: str, tenant_id: str) -> Principal | None:
    """Who a session cookie signs in, if the session is live (in the current tenant's transaction)."""
    row = await one(
        "SELECT s.id::text AS session_id, u.id::text AS staff_id, u.role FROM auth_sessions s "
        "JOIN auth_staff u ON u.id = s.staff WHERE s.token_hash = {} AND s.expires_at > now()",
        hashing.token_digest(token),
    )
    if row is None:
        return None
    return Principal(row["staff_id"], tenant_id, Role(row["role"]), session_id=row["session_id"])


async def end(session_id: str) -> None:
    await run("DELETE FROM auth_sessions WHERE id = {}", uuid.UUID(session_id))
