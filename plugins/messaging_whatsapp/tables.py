"""The plugin's tables, tenant-owned: a shop's messages and customers are visible in its transaction only."""

from __future__ import annotations

from piccolo.columns import JSONB, UUID, Integer, Text, Timestamptz
from piccolo.table import Table


class WhatsAppMessage(Table, tablename="whatsapp_messages"):
    """One message we send: the dedupe record of its job, and how far it got at Meta."""

    id = UUID(primary_key=True)
    idempotency_key = Text()
    recipient = Text()
    content = JSONB()
    fallback = JSONB(null=True, default=None)
    purpose = Text(null=True, default=None)
    status = Text()
    provider_message_id = Text(null=True, default=None)
    error_code = Text(null=True, default=None)
    provider_error_code = Text(null=True, default=None)
    attempts = Integer()
    next_attempt_at = Timestamptz()
    lease_until = Timestamptz(null=True, default=None)
    created_at = Timestamptz()
    updated_at = Timestamptz()


class WhatsAppContact(Table, tablename="whatsapp_contacts"):
    """When a customer last wrote to the shop: the start of the 24-hour service window."""

    customer = Text(primary_key=True)
    last_inbound_at = Timestamptz()
