"""The `whatsapp` messaging channel: the kernel's contract over the Graph API, with Meta's webhooks.

`send` stores the message under its idempotency key and makes one attempt at once, in the caller's transaction
when one is open (a sign-in code is stored, or rolled back, with the request's writes): a repeated key returns the
first message and never a second one at Meta. Refusals are `SendError`s; retryable ones leave the message queued,
where the next `send` with the same key or the sweep retries it.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import ClassVar

from pydantic import BaseModel

from kernel import (
    ChannelCapability,
    DeliveryStatus,
    InboundMessage,
    Kernel,
    MessagingChannel,
    OutboundMessage,
    SendError,
    SendErrorCode,
    SendResult,
    WebhookRequest,
)
from plugins.messaging_whatsapp import delivery, outgoing, webhook
from plugins.messaging_whatsapp.credentials import WhatsAppCredentials
from plugins.messaging_whatsapp.runtime import CHANNEL, runtime_of
from plugins.messaging_whatsapp.store import MessageRow


class WhatsAppChannel(MessagingChannel):
    name = CHANNEL
    capabilities = frozenset(
        {ChannelCapability.TEMPLATES, ChannelCapability.DELIVERY_RECEIPTS, ChannelCapability.IDEMPOTENT_SEND}
    )
    credentials_model: ClassVar[type[BaseModel] | None] = WhatsAppCredentials

    def __init__(self, kernel: Kernel) -> None:
        self._kernel = kernel

    async def send(self, message: OutboundMessage) -> SendResult:
        runtime = runtime_of(self._kernel)
        async with delivery.tenant_tx(self._kernel, message.tenant_id):
            stored = await outgoing.store_message(runtime, message)
        if stored.pending:
            attempted = await delivery.attempt(runtime, message.tenant_id, stored.id, wait_inline=True)
            if attempted.error is not None:
                raise attempted.error
            stored = attempted.message or stored
        return result_of(stored)

    async def verify_webhook(self, request: WebhookRequest) -> bool:
        return webhook.signature_valid(request, runtime_of(self._kernel).app_secret)

    async def parse_webhook(self, request: WebhookRequest) -> list[InboundMessage | DeliveryStatus]:
        return webhook.parse(request.body)

    def verify_subscription(self, query: Mapping[str, str]) -> str | None:
        return webhook.subscription_reply(query, runtime_of(self._kernel).settings.verify_token)


def result_of(message: MessageRow) -> SendResult:
    """What `send` answers for a stored message: Meta's id, or the refusal that ended or still holds it."""
    if message.provider_message_id is not None:
        return SendResult(message.provider_message_id)
    code = SendErrorCode(message.error_code) if message.error_code else SendErrorCode.UNAVAILABLE
    if message.status == "failed":
        raise SendError(code, "the message was refused earlier", retryable=False)
    raise SendError(code, "the message is still being sent", retryable=True, retry_after=1.0)
