"""The outbox table, tenant-owned: a tenant's messages are visible in its transaction only."""

from __future__ import annotations

from piccolo.columns import JSONB, UUID, Text, Timestamptz
from piccolo.table import Table


class OutboxMessage(Table, tablename="outbox_messages"):
    """A message that was "sent": text or template, its recipient, and the caller's idempotency key."""

    id = UUID(primary_key=True)
    recipient = Text()
    body = Text(null=True, default=None)
    template = JSONB(null=True, default=None)
    idempotency_key = Text()
    created_at = Timestamptz()
