"""The messaging-channel contract: what a third-party WhatsApp, SMS or similar plugin implements.

Webhook handling (`WebhookRequest`, verification, de-duplication keys) is shared with payments; see
`kernel.payments`. Errors are classified into the kernel's vocabulary so the sender knows whether to retry,
switch to a template, or stop (anchors §3.5).
"""

from __future__ import annotations

from abc import abstractmethod
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from kernel.payments import ProviderError, WebhookReceiver, is_e164, require_aware, require_text


class ChannelCapability(StrEnum):
    """What a channel can promise; the kernel plans around what is missing."""

    TEMPLATES = "templates"  # sends pre-approved templates; without it a `Template` raises UnsupportedOperation
    DELIVERY_RECEIPTS = "delivery_receipts"  # its webhooks report `DeliveryStatus`
    IDEMPOTENT_SEND = "idempotent_send"  # the same idempotency key never yields a second message


class MessageStatus(StrEnum):
    """How far a message got. Platforms report these out of order (read before delivered): keep the furthest."""

    ACCEPTED = "accepted"  # the platform took it; nothing reached the phone yet
    SENT = "sent"
    DELIVERED = "delivered"
    READ = "read"
    FAILED = "failed"


class SendErrorCode(StrEnum):
    """Why a message failed, in words the kernel can act on whatever the platform."""

    INVALID_RECIPIENT = "invalid_recipient"
    OPTED_OUT = "opted_out"  # the recipient stopped these messages: do not retry
    SESSION_WINDOW_CLOSED = "session_window_closed"  # free text is not allowed now: send a template
    TEMPLATE_REJECTED = "template_rejected"  # missing, paused, or parameters that do not fit
    RATE_LIMITED = "rate_limited"
    UNAVAILABLE = "unavailable"
    MISCONFIGURED = "misconfigured"  # credentials or account settings: an operator must act
    REJECTED = "rejected"  # anything else the platform refused

    @property
    def retryable(self) -> bool:
        return self in (SendErrorCode.RATE_LIMITED, SendErrorCode.UNAVAILABLE)


class SendError(ProviderError[SendErrorCode]):
    """A message could not be sent."""

    @classmethod
    def classify(
        cls,
        provider_code: str | int,
        table: Mapping[str, SendErrorCode],
        detail: str = "",
        *,
        retry_after: float | None = None,
    ) -> SendError:
        """Translate a platform error code through the channel's `table` (e.g. WhatsApp "131047" -> session closed).

        Codes missing from the table are `rejected` and not retried: resending blindly spams the customer.
        """
        code = table.get(str(provider_code), SendErrorCode.REJECTED)
        return cls(code, detail, retryable=code.retryable, provider_code=str(provider_code), retry_after=retry_after)


@dataclass(frozen=True)
class Template:
    """A pre-approved message: the only kind that reaches a WhatsApp user outside the 24-hour window."""

    name: str
    language: str
    parameters: tuple[str, ...] = ()


@dataclass(frozen=True)
class OutboundMessage:
    """One message to send: exactly one of `text` and `template`.

    `purpose` (`otp`, `receipt`) says what the message is for, and `parameters` are the values inside `text`, in
    order: a channel that may not send free text now (WhatsApp outside the 24-hour window) sends the template it
    has configured for that purpose with those parameters instead.
    """

    tenant_id: str
    to: str
    idempotency_key: str
    text: str | None = None
    template: Template | None = None
    purpose: str | None = None
    parameters: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        require_text(self, "tenant_id", "idempotency_key")
        if not is_e164(self.to):
            raise ValueError("OutboundMessage.to must be E.164, like +254712345678")
        if (self.text is None) == (self.template is None):
            raise ValueError("OutboundMessage needs exactly one of text and template")


@dataclass(frozen=True)
class SendResult:
    """What the platform said on taking the message; its later progress arrives as `DeliveryStatus`."""

    provider_message_id: str
    status: MessageStatus = MessageStatus.ACCEPTED

    def __post_init__(self) -> None:
        require_text(self, "provider_message_id")


@dataclass(frozen=True)
class InboundMessage:
    """A verified message from a customer, as `message_received` hooks receive it.

    `tenant_hint` names the receiving account (WhatsApp's `phone_number_id`): one app has one webhook URL for
    every tenant, so route on this, never on the URL.
    """

    channel: str
    tenant_hint: str | None
    sender: str
    text: str
    provider_message_id: str
    received_at: datetime

    def __post_init__(self) -> None:
        require_text(self, "channel", "provider_message_id")
        require_aware(self.received_at, "InboundMessage.received_at")
        if not is_e164(self.sender):
            raise ValueError("InboundMessage.sender must be E.164; WhatsApp's `from` lacks the leading +")

    @property
    def dedupe_key(self) -> str:
        return self.provider_message_id


@dataclass(frozen=True)
class DeliveryStatus:
    """A verified status update for a message we sent; `error_code` explains a failure when the platform did.

    `tenant_hint` names the sending account (WhatsApp's `phone_number_id`), as for `InboundMessage`; `reference`
    is our own id for the message where the platform echoes one back (WhatsApp's `biz_opaque_callback_data`).
    """

    channel: str
    provider_message_id: str
    status: MessageStatus
    error_code: SendErrorCode | None = None
    tenant_hint: str | None = None
    reference: str | None = None

    def __post_init__(self) -> None:
        require_text(self, "channel", "provider_message_id")
        if self.error_code is not None and self.status is not MessageStatus.FAILED:
            raise ValueError("DeliveryStatus.error_code belongs to failed messages only")

    @property
    def dedupe_key(self) -> str:
        return f"{self.provider_message_id}:{self.status}"


class MessagingChannel(WebhookReceiver[InboundMessage | DeliveryStatus]):
    """A messaging-platform adapter. Set `name` (lower_snake_case, unique) and `capabilities`; pass the contract."""

    capabilities: frozenset[ChannelCapability] = frozenset()

    @abstractmethod
    async def send(self, message: OutboundMessage) -> SendResult:
        """Send one message; raise `SendError` (see `SendError.classify`) when the platform refuses it.

        Pass `idempotency_key` to the platform where it takes one. Without `IDEMPOTENT_SEND` a repeated key may
        deliver a second message, so callers retry such a channel only where a duplicate is acceptable.
        """

    def verify_subscription(self, query: Mapping[str, str]) -> str | None:
        """The reply to a platform's GET handshake (WhatsApp's `hub.challenge`), or None to refuse it.

        Compare the verify token in constant time. The default refuses: most channels have no handshake.
        """
        return None
