"""The outbox channel: "sends" by storing the message in the tenant's outbox table, where developers, the
`soko outbox` command and tests read it. Nothing leaves the machine.

It joins the caller's transaction when one is open for the message's tenant (a sign-in code is then stored, or
rolled back, with the request's own writes), and opens a tenant transaction of its own otherwise (a job, a CLI).
Simulated inbound messages arrive as webhooks signed with `webhook_secret`, so the platform's whole round trip
can be exercised in development.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

from kernel import (
    ChannelCapability,
    InboundMessage,
    Kernel,
    MessagingChannel,
    OutboundMessage,
    SendResult,
    WebhookRequest,
    tenant_id_var,
)
from plugins.outbox.settings import OutboxSettings
from plugins.outbox.tables import OutboxMessage

NAME = "outbox"
SIGNATURE_HEADER = "X-Outbox-Signature"


class OutboxChannel(MessagingChannel):
    name = NAME
    capabilities = frozenset({ChannelCapability.TEMPLATES, ChannelCapability.IDEMPOTENT_SEND})

    def __init__(self, kernel: Kernel, settings: OutboxSettings) -> None:
        self._kernel = kernel
        self._secret = settings.webhook_secret

    async def send(self, message: OutboundMessage) -> SendResult:
        """Store the message once per idempotency key; its row id is the provider message id."""
        if OutboxMessage._meta.db.current_transaction.get() is not None:
            if tenant_id_var.get() != message.tenant_id:
                raise RuntimeError("the open transaction belongs to another tenant than the message")
            return SendResult(await _store(message))
        async with self._kernel.tenant_transaction(message.tenant_id):
            return SendResult(await _store(message))

    async def verify_webhook(self, request: WebhookRequest) -> bool:
        if self._secret is None or not request.body:
            return False
        return request.hmac_sha256_matches(self._secret.get_secret_value().encode(), SIGNATURE_HEADER)

    async def parse_webhook(self, request: WebhookRequest) -> list[InboundMessage]:
        """`{"messages": [{"id", "tenant", "from", "text"}]}`: a simulated customer's replies."""
        document = json.loads(request.body)
        return [
            InboundMessage(
                channel=NAME,
                tenant_hint=str(item["tenant"]),
                sender=str(item["from"]),
                text=str(item["text"]),
                provider_message_id=str(item["id"]),
                received_at=datetime.fromisoformat(item["received_at"]) if "received_at" in item else _EPOCH,
            )
            for item in _messages(document)
        ]


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)  # a simulated message without a time: fixed, so re-parsing is stable


def _messages(document: Any) -> list[dict[str, Any]]:
    if not isinstance(document, dict) or not isinstance(document.get("messages"), list):
        raise ValueError('expected {"messages": [...]}')
    return document["messages"]


async def _store(message: OutboundMessage) -> str:
    template = None
    if message.template is not None:
        template = json.dumps(
            {
                "name": message.template.name,
                "language": message.template.language,
                "parameters": message.template.parameters,
            }
        )
    rows = await OutboxMessage.raw(
        "WITH inserted AS (INSERT INTO outbox_messages (recipient, body, template, idempotency_key) "
        "VALUES ({}, {}, {}::jsonb, {}) ON CONFLICT (tenant_id, idempotency_key) DO NOTHING RETURNING id) "
        "SELECT id::text FROM inserted UNION ALL "
        "SELECT id::text FROM outbox_messages WHERE idempotency_key = {} LIMIT 1",
        message.to,
        message.text,
        template,
        message.idempotency_key,
        message.idempotency_key,
    )
    return str(rows[0]["id"])


async def recent(limit: int, recipient: str | None = None) -> list[dict[str, Any]]:
    """The newest messages of the current tenant, newest first (optionally to one recipient)."""
    return await OutboxMessage.raw(
        "SELECT id::text, recipient, body, template, idempotency_key, created_at FROM outbox_messages "
        "WHERE {}::text IS NULL OR recipient = {} ORDER BY created_at DESC, id LIMIT {}",
        recipient,
        recipient,
        limit,
    )
