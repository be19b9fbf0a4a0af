"""The SQL of the messages and contacts tables. Every function runs in the caller's tenant transaction.

Status only moves forward (`whatsapp_status_rank`, defined by the migration): a late `delivered` after `read`, a
duplicate webhook, or the job recording Meta's answer after a webhook already reported the message read change
nothing. `failed` ranks below `delivered`: with several devices Meta may report a failure on one and delivery on
another, and the message did arrive.
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass, fields
from datetime import datetime
from typing import Any

from kernel import Kernel, SendError


@dataclass(frozen=True)
class MessageRow:
    id: str
    idempotency_key: str
    recipient: str
    content: dict[str, Any]
    fallback: dict[str, Any] | None
    purpose: str | None
    status: str
    provider_message_id: str | None
    error_code: str | None
    attempts: int

    @property
    def pending(self) -> bool:
        """Not yet taken by Meta, nor given up on."""
        return self.status in ("queued", "sending")


_FIELDS = tuple(field.name for field in fields(MessageRow))


def _row(record: Any) -> MessageRow:
    values = {name: record[name] for name in _FIELDS}
    values["id"] = str(values["id"])
    for column in ("content", "fallback"):
        if isinstance(values[column], str):
            values[column] = json.loads(values[column])
    return MessageRow(**values)


async def insert(
    kernel: Kernel,
    key: str,
    recipient: str,
    content: dict[str, Any],
    *,
    fallback: dict[str, Any] | None = None,
    purpose: str | None = None,
) -> MessageRow:
    """The message of `key`, stored `queued` if new; a key already used gets its first message back.

    `fallback` is the template content to send instead of free-form `content` outside the service window.
    """
    connection = kernel.connection()
    created = await connection.fetchrow(
        "INSERT INTO whatsapp_messages (idempotency_key, recipient, content, fallback, purpose) "
        "VALUES ($1, $2, $3::jsonb, $4::jsonb, $5) "
        "ON CONFLICT (tenant_id, idempotency_key) DO NOTHING RETURNING *",
        key,
        recipient,
        json.dumps(content),
        None if fallback is None else json.dumps(fallback),
        purpose,
    )
    if created is None:  # a concurrent insert of the same key waited for the first to commit, then came here
        created = await connection.fetchrow("SELECT * FROM whatsapp_messages WHERE idempotency_key = $1", key)
    return _row(created)


async def get(kernel: Kernel, message_id: str) -> MessageRow | None:
    record = await kernel.connection().fetchrow("SELECT * FROM whatsapp_messages WHERE id = $1::uuid", message_id)
    return None if record is None else _row(record)


async def claim(kernel: Kernel, message_id: str, lease_seconds: float, *, due_only: bool = True) -> MessageRow | None:
    """Take a due message for one send attempt, or None: sent, failed, not due, or another job holds it.

    A message left `sending` by a worker that died holds its lease until it runs out; then it is due again.
    `due_only=False` (a caller retrying with the same key) takes a queued message before its retry time.
    """
    record = await kernel.connection().fetchrow(
        "UPDATE whatsapp_messages SET status = 'sending', attempts = attempts + 1, updated_at = now(), "
        "lease_until = now() + make_interval(secs => $2) WHERE id = $1::uuid AND ("
        "(status = 'queued' AND (next_attempt_at <= now() OR NOT $3)) OR (status = 'sending' AND lease_until < now())) "
        "RETURNING *",
        message_id,
        lease_seconds,
        due_only,
    )
    return None if record is None else _row(record)


async def record_accepted(kernel: Kernel, message_id: str, provider_message_id: str) -> None:
    await kernel.connection().execute(
        "UPDATE whatsapp_messages SET provider_message_id = coalesce(provider_message_id, $2), lease_until = NULL, "
        "error_code = NULL, provider_error_code = NULL, updated_at = now(), "
        "status = CASE WHEN whatsapp_status_rank(status) < whatsapp_status_rank('accepted') "
        "THEN 'accepted' ELSE status END WHERE id = $1::uuid",
        message_id,
        provider_message_id,
    )


async def record_retry(
    kernel: Kernel, message_id: str, error: SendError, at: datetime, *, refund_attempt: bool = False
) -> None:
    """Back to `queued` until `at`, unless a webhook showed meanwhile that Meta has it after all.

    `refund_attempt`: the attempt never reached Meta (our own pacing held it back), so it does not count.
    """
    await kernel.connection().execute(
        "UPDATE whatsapp_messages SET status = 'queued', next_attempt_at = $2, lease_until = NULL, "
        "error_code = $3, provider_error_code = $4, updated_at = now(), attempts = attempts - $5 "
        "WHERE id = $1::uuid AND status = 'sending'",
        message_id,
        at,
        str(error.code),
        error.provider_code,
        1 if refund_attempt else 0,
    )


async def record_failed(kernel: Kernel, message_id: str, error: SendError) -> None:
    await kernel.connection().execute(
        "UPDATE whatsapp_messages SET status = 'failed', lease_until = NULL, error_code = $2, "
        "provider_error_code = $3, updated_at = now() WHERE id = $1::uuid AND status IN ('queued', 'sending')",
        message_id,
        str(error.code),
        error.provider_code,
    )


async def replace_content(kernel: Kernel, message_id: str, content: dict[str, Any]) -> None:
    """The purpose's template instead of free text: the window was closed when the message went."""
    await kernel.connection().execute(
        "UPDATE whatsapp_messages SET content = $2::jsonb, updated_at = now() WHERE id = $1::uuid",
        message_id,
        json.dumps(content),
    )


async def apply_status(
    kernel: Kernel, provider_message_id: str, reference: str | None, status: str, error_code: str | None
) -> bool:
    """Move the message forward to `status`; False when it is unknown or already as far (a duplicate, a late one).

    A message whose send answer never came back (the worker died) is found by our own id, which Meta echoes.
    """
    own_id = _uuid_or_none(reference)
    result = await kernel.connection().execute(
        "UPDATE whatsapp_messages SET status = $3, provider_message_id = coalesce(provider_message_id, $1), "
        "error_code = CASE WHEN $3 = 'failed' THEN $4 ELSE error_code END, lease_until = NULL, updated_at = now() "
        "WHERE (provider_message_id = $1 OR (provider_message_id IS NULL AND id = $2::uuid)) "
        "AND whatsapp_status_rank(status) < whatsapp_status_rank($3)",
        provider_message_id,
        own_id,
        status,
        error_code,
    )
    return result != "UPDATE 0"


async def due(kernel: Kernel, limit: int) -> list[str]:
    """Messages whose retry time came, and sends abandoned by a dead worker, oldest first."""
    rows = await kernel.connection().fetch(
        "SELECT id::text FROM whatsapp_messages WHERE (status = 'queued' AND next_attempt_at <= now()) "
        "OR (status = 'sending' AND lease_until < now()) ORDER BY next_attempt_at LIMIT $1",
        limit,
    )
    return [row["id"] for row in rows]


async def touch_inbound(kernel: Kernel, customer: str, at: datetime) -> None:
    await kernel.connection().execute(
        "INSERT INTO whatsapp_contacts (customer, last_inbound_at) VALUES ($1, $2) ON CONFLICT (tenant_id, customer) "
        "DO UPDATE SET last_inbound_at = greatest(whatsapp_contacts.last_inbound_at, EXCLUDED.last_inbound_at)",
        customer,
        at,
    )


async def last_inbound(kernel: Kernel, customer: str) -> datetime | None:
    value: datetime | None = await kernel.connection().fetchval(
        "SELECT last_inbound_at FROM whatsapp_contacts WHERE customer = $1", customer
    )
    return value


def _uuid_or_none(value: str | None) -> str | None:
    try:
        return str(uuid.UUID(value)) if value else None
    except ValueError:
        return None
