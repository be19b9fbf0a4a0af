"""Idempotency records in PostgreSQL: claim a key, record the response, release a failed claim, purge old ones.

A claim commits in its own short transaction, so a concurrent request with the same key sees it at once; the
response is recorded in the request's own transaction (see middleware), so it commits with the business effect.
Every write names the claim it holds, so a request whose lease ran out cannot overwrite its successor's record.
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass
from datetime import timedelta

import asyncpg
from quart import Response
from werkzeug.datastructures import Headers

from kernel import Kernel, request_id_var

# Not replayed: hop-by-hop or per-response headers, and anything that could hand a session to another caller.
_NOT_RECORDED = frozenset({"content-length", "set-cookie", "date", "x-request-id"})

_CLAIM = """
INSERT INTO idempotency_keys AS k (caller, key, fingerprint, claim, state, locked_until, expires_at)
VALUES ($1, $2, $3, $4, 'in_progress', now() + $5, now() + $6)
ON CONFLICT (tenant_id, caller, key) DO UPDATE
SET fingerprint = EXCLUDED.fingerprint, claim = EXCLUDED.claim, state = 'in_progress', status = NULL,
    headers = NULL, body = NULL, created_at = now(), locked_until = EXCLUDED.locked_until,
    expires_at = EXCLUDED.expires_at
WHERE k.expires_at <= now()
   OR (k.state = 'in_progress' AND k.locked_until <= now() AND k.fingerprint = EXCLUDED.fingerprint)
RETURNING claim
"""


@dataclass(frozen=True)
class Key:
    """One key of one caller in the bound tenant, and what the request that uses it looks like."""

    caller: str
    key: str
    fingerprint: str


@dataclass(frozen=True)
class Recorded:
    """What another request left under the key: still running, or its answer."""

    fingerprint: str
    completed: bool
    status: int | None
    headers: list[list[str]]
    body: bytes | None

    def replay(self) -> Response:
        headers = Headers([(name, value) for name, value in self.headers])
        headers["Idempotent-Replayed"] = "true"
        return Response(self.body or b"", status=self.status or 200, headers=headers)


async def claim(kernel: Kernel, key: Key, lease: timedelta, retention: timedelta) -> uuid.UUID | Recorded:
    """Our claim's id if the key was free (or expired, or abandoned by a dead request), else what holds it."""
    while True:
        async with kernel.tenant_transaction():
            connection = kernel.connection()
            claimed = await connection.fetchval(
                _CLAIM, key.caller, key.key, key.fingerprint, uuid.uuid4(), lease, retention
            )
            if claimed is not None:
                return claimed
            row = await connection.fetchrow(
                "SELECT fingerprint, state, status, headers, body FROM idempotency_keys WHERE caller = $1 AND key = $2",
                key.caller,
                key.key,
            )
        if row is not None:  # None: released between our two statements; try again
            headers = json.loads(row["headers"]) if row["headers"] else []
            return Recorded(row["fingerprint"], row["state"] == "completed", row["status"], headers, row["body"])


ORIGINAL_REQUEST_ID = "Idempotent-Original-Request-ID"


async def record(connection: asyncpg.Connection, key: Key, claim_id: uuid.UUID, response: Response) -> None:
    """Store the response under our claim, in the caller's transaction; a lost claim raises, rolling it back."""
    headers = [[name, value] for name, value in response.headers.items() if name.lower() not in _NOT_RECORDED]
    # A replay answers a new request (its own X-Request-ID) with the original's bytes: this names the original.
    headers.append([ORIGINAL_REQUEST_ID, request_id_var.get() or ""])
    stored = await connection.fetchval(
        "UPDATE idempotency_keys SET state = 'completed', status = $4, headers = $5, body = $6 "
        "WHERE caller = $1 AND key = $2 AND claim = $3 AND state = 'in_progress' RETURNING true",
        key.caller,
        key.key,
        claim_id,
        response.status_code,
        json.dumps(headers),
        await response.get_data(),
    )
    if not stored:
        raise RuntimeError(f"idempotency claim on {key.key!r} was lost (lease expired): not committing the effect")


async def release(kernel: Kernel, key: Key, claim_id: uuid.UUID) -> None:
    """Forget a claim whose request failed, so a retry runs again; a recorded answer is never deleted here."""
    async with kernel.tenant_transaction():
        await kernel.connection().execute(
            "DELETE FROM idempotency_keys WHERE caller = $1 AND key = $2 AND claim = $3 AND state = 'in_progress'",
            key.caller,
            key.key,
            claim_id,
        )


async def purge(connection: asyncpg.Connection) -> int:
    """Delete records past retention (claims only once their lease ran out too); safe to run any number of times."""
    deleted = await connection.fetch(
        "DELETE FROM idempotency_keys WHERE expires_at <= now() AND (state = 'completed' OR locked_until <= now()) "
        "RETURNING 1"
    )
    return len(deleted)
