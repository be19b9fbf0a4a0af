"""The webhook inbox: every verified event is stored once, then applied by a job in its tenant's transaction.

The HTTP route only verifies, parses, stores each event (unique per kind, receiver and dedupe key: a repeat
changes nothing) and enqueues `kernel.process_webhook`, then acknowledges. The job:

1. claims the row for one retry interval and counts an attempt (outside any transaction, so a crash still
   counts), giving up into quarantine after `webhook_max_attempts`; a job that finds the row claimed (the same
   event delivered twice at once, each delivery enqueuing it) does nothing, so duplicates never use up attempts;
2. resolves the tenant: the URL's per-tenant token if it had one, and every `webhook_tenant` answer; they must
   all agree, and one tenant must come out, else the event is quarantined (logged, never delivered to a guess);
3. in that tenant's transaction, marks the row processed (a conditional UPDATE that also locks it, so a
   concurrent copy of the job waits and then finds it done) and emits the event hook; both commit together, or
   the row stays `received` for the next attempt. Work the hooks registered with `after_commit` (a job to
   enqueue) runs once that committed, never after a rollback. A hook that finds the event can never apply (an
   amount that does not match what it pays for) raises `Quarantine`: its writes roll back and the row is
   quarantined at once instead of being retried.

Crashed jobs come back through the stream's reclaim; rows whose job was lost (a failed enqueue, a failed hook)
are enqueued again by the sweep, which every process ticks and one runs per period.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Awaitable, Callable, Sequence
from typing import TYPE_CHECKING, Any

from pydantic import TypeAdapter
from redis.exceptions import RedisError
from taskiq.exceptions import SendTaskError

from kernel import commit
from kernel.context import tenant_id_var
from kernel.messaging import DeliveryStatus, InboundMessage
from kernel.metrics import count_webhook
from kernel.payments import PaymentEvent

if TYPE_CHECKING:
    from kernel.kernel import Kernel

log = logging.getLogger("soko.inbox")

PROCESS_TASK = "kernel.process_webhook"
SWEEP_TASK = "kernel.sweep_webhooks"
SWEEP_BATCH = 500

WebhookEvent = PaymentEvent | InboundMessage | DeliveryStatus
_CODECS: dict[str, TypeAdapter[Any]] = {
    kind.__name__: TypeAdapter(kind) for kind in (PaymentEvent, InboundMessage, DeliveryStatus)
}


class Quarantine(Exception):
    """Raised by an event hook for an event that must never be applied: set aside for an operator, not retried.

    The message is the reason, stored and logged: keep phone numbers, receipts and secrets out of it.
    """


def encode(event: WebhookEvent) -> tuple[str, str]:
    """The event's type name and JSON, as the inbox stores them."""
    name = type(event).__name__
    return name, _CODECS[name].dump_json(event).decode()


def decode(name: str, document: str) -> WebhookEvent:
    """The same dataclass `encode` was given (its checks run again)."""
    event: WebhookEvent = _CODECS[name].validate_json(document)
    return event


async def store(
    kernel: Kernel, kind: str, receiver: str, events: Sequence[WebhookEvent], path_tenant: str | None
) -> None:
    """Insert every event (repeats are no-ops) and enqueue the job for those still waiting to be processed."""
    waiting: list[int] = []
    async with kernel.unscoped_connection() as connection:
        for event in events:
            name, document = encode(event)
            rows = await connection.fetch(
                "SELECT id, status FROM soko_inbox_add($1, $2, $3, $4, $5::jsonb, $6::uuid)",
                kind,
                receiver,
                event.dedupe_key,
                name,
                document,
                path_tenant,
            )
            fresh = [row["id"] for row in rows if row["status"] == "received"]
            count_webhook(receiver, "accepted", len(fresh))
            count_webhook(receiver, "duplicate", len(rows) - len(fresh))
            waiting += fresh
    await _enqueue(kernel, waiting)


async def _enqueue(kernel: Kernel, ids: Sequence[int]) -> None:
    for inbox_id in ids:
        try:
            await kernel.task(PROCESS_TASK).kiq(inbox_id)
        except (SendTaskError, RedisError, OSError):  # the row is stored: the sweep enqueues it once the queue is back
            log.warning("webhook event stored but not enqueued; the sweep will retry", extra={"inbox_id": inbox_id})


def process_task(kernel: Kernel) -> Callable[[int], Awaitable[str]]:
    async def process_webhook(inbox_id: int) -> str:
        return await process(kernel, inbox_id)

    return process_webhook


def sweep_task(kernel: Kernel) -> Callable[[], Awaitable[int]]:
    async def sweep_webhooks() -> int:
        async with kernel.unscoped_connection() as connection:
            rows = await connection.fetch(
                "SELECT id FROM soko_inbox_waiting($1, $2) AS id", kernel.settings.webhook_retry_seconds, SWEEP_BATCH
            )
        await _enqueue(kernel, [row["id"] for row in rows])
        return len(rows)

    return sweep_webhooks


async def process(kernel: Kernel, inbox_id: int) -> str:
    """Apply one inbox row; returns what became of it (`processed`, `quarantined`, `done`, `failed`)."""
    async with kernel.unscoped_connection() as connection:
        row = await connection.fetchrow("SELECT * FROM soko_inbox_get($1)", inbox_id)
        if row is None or row["status"] != "received":
            return "done"
        # Claimed for one retry interval: a concurrent job for the same row (a duplicate delivery) does nothing.
        attempts = await connection.fetchval(
            "SELECT soko_inbox_claim($1, $2)", inbox_id, kernel.settings.webhook_retry_seconds
        )
    if attempts is None:
        return "done"
    context = {"inbox_id": inbox_id, "receiver": row["receiver"], "attempt": attempts}
    if attempts > kernel.settings.webhook_max_attempts:
        return await _quarantine(kernel, inbox_id, f"gave up after {attempts - 1} failed attempts", context)
    event = decode(row["event_type"], row["event"])
    path_tenant = None if row["path_tenant"] is None else str(row["path_tenant"])
    tenant, reason = await resolve_tenant(kernel, row["receiver"], event, path_tenant)
    if tenant is None:
        return await _quarantine(kernel, inbox_id, reason, context)
    commit.reset()  # what `after_commit` collects from here on belongs to this event's transaction only
    try:
        async with kernel.tenant_transaction(tenant):
            claimed = await kernel.connection().fetchval(
                "SELECT soko_inbox_finish($1, 'processed', $2::uuid, NULL)", inbox_id, tenant
            )
            if not claimed:
                return "done"
            await _emit(kernel, event)
        await _after_commit(tenant)
    except Quarantine as refused:
        return await _quarantine(kernel, inbox_id, str(refused), context | {"tenant_id": tenant})
    except Exception:  # a failing hook leaves the row waiting: the sweep retries it, up to webhook_max_attempts
        log.exception("webhook event failed; it will be retried", extra=context | {"tenant_id": tenant})
        count_webhook(row["receiver"], "failed")
        return "failed"
    finally:
        commit.reset()
    count_webhook(row["receiver"], "processed")
    return "processed"


async def _after_commit(tenant: str) -> None:
    """The hooks' `after_commit` work, as in a request: once committed, with the tenant bound (jobs they enqueue
    carry it)."""
    token = tenant_id_var.set(tenant)
    try:
        await commit.run_after_commit()
    finally:
        tenant_id_var.reset(token)


async def resolve_tenant(
    kernel: Kernel, receiver: str, event: WebhookEvent, path_tenant: str | None
) -> tuple[str | None, str]:
    """The event's tenant, or None with the reason: every source that answers must name the same one."""
    answers = set()
    for _, answer in kernel.call("webhook_tenant", kernel=kernel, receiver=receiver, event=event):
        found = await answer if isinstance(answer, Awaitable) else answer
        if found:
            answers.add(str(uuid.UUID(str(found))))
    if path_tenant is not None:
        if answers - {path_tenant}:
            return None, "the URL's tenant and the event's tenant disagree"
        return path_tenant, ""
    if len(answers) > 1:
        return None, "plugins name different tenants for the event"
    if not answers:
        return None, "no tenant could be found for the event"
    return answers.pop(), ""


async def _quarantine(kernel: Kernel, inbox_id: int, reason: str, context: dict[str, Any]) -> str:
    async with kernel.unscoped_connection() as connection:
        await connection.fetchval("SELECT soko_inbox_finish($1, 'quarantined', NULL, $2)", inbox_id, reason)
    log.warning("webhook event quarantined: %s", reason, extra=context)
    count_webhook(context["receiver"], "quarantined")
    return "quarantined"


async def _emit(kernel: Kernel, event: WebhookEvent) -> None:
    if isinstance(event, PaymentEvent):
        await kernel.emit("payment_event", event=event)
    elif isinstance(event, InboundMessage):
        await kernel.emit("message_received", message=event)
    else:
        await kernel.emit("message_status", status=event)
