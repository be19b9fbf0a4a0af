"""Meta's webhooks: the GET subscription check, the signature over the raw body, and the events in a body.

Every shop's events arrive at one URL, so each event carries the receiving number's `phone_number_id` as its
`tenant_hint`; the kernel's inbox routes on that (anchors §3.4), never on the URL.
"""

from __future__ import annotations

import hmac
import json
import logging
from collections.abc import Iterator, Mapping
from datetime import UTC, datetime
from typing import Any

from pydantic import SecretStr

from kernel import DeliveryStatus, InboundMessage, MessageStatus, SendErrorCode, WebhookRequest
from plugins.messaging_whatsapp.graph import ERROR_CODES

log = logging.getLogger("soko.whatsapp")

NAME = "whatsapp"
SIGNATURE_HEADER = "X-Hub-Signature-256"
STATUSES = {
    "sent": MessageStatus.SENT,
    "delivered": MessageStatus.DELIVERED,
    "read": MessageStatus.READ,
    "played": MessageStatus.READ,  # voice messages: listened to
    "failed": MessageStatus.FAILED,
}


def subscription_reply(query: Mapping[str, str], verify_token: SecretStr | None) -> str | None:
    """`hub.challenge` when the mode is subscribe and the token matches (constant time); else None."""
    if verify_token is None or query.get("hub.mode") != "subscribe" or "hub.challenge" not in query:
        return None
    offered = query.get("hub.verify_token", "").encode()
    if not hmac.compare_digest(offered, verify_token.get_secret_value().encode()):
        return None
    return query["hub.challenge"]


def signature_valid(request: WebhookRequest, app_secret: SecretStr | None) -> bool:
    """HMAC-SHA256 of the exact bytes received; a missing header, an empty body or no secret configured fail."""
    if app_secret is None or not request.body:
        return False
    return request.hmac_sha256_matches(app_secret.get_secret_value().encode(), SIGNATURE_HEADER)


def parse(body: bytes) -> list[InboundMessage | DeliveryStatus]:
    """The customers' messages and our messages' statuses in one webhook body, in the order Meta listed them."""
    document = json.loads(body)
    if not isinstance(document, dict) or document.get("object") != "whatsapp_business_account":
        raise ValueError("not a WhatsApp Business Account webhook")
    events: list[InboundMessage | DeliveryStatus] = []
    for value in _values(document):
        phone_number_id = str((value.get("metadata") or {}).get("phone_number_id") or "") or None
        for error in value.get("errors") or []:
            log.warning("whatsapp reported an error", extra={"provider_code": str(error.get("code"))})
        events += [_inbound(item, phone_number_id) for item in value.get("messages") or []]
        events += [_status(item, phone_number_id) for item in value.get("statuses") or []]
    return events


def _values(document: Mapping[str, Any]) -> Iterator[Mapping[str, Any]]:
    for entry in document.get("entry") or []:
        for change in entry.get("changes") or []:
            if change.get("field") == "messages" and isinstance(change.get("value"), dict):
                yield change["value"]


def _inbound(item: Mapping[str, Any], phone_number_id: str | None) -> InboundMessage:
    return InboundMessage(
        channel=NAME,
        tenant_hint=phone_number_id,
        sender="+" + str(item["from"]).lstrip("+"),
        text=_text_of(item),
        provider_message_id=str(item["id"]),
        received_at=_moment(item.get("timestamp")),
    )


def _text_of(item: Mapping[str, Any]) -> str:
    """The words of a message; for a tapped reply button or list row, the id we gave it (what code acts on)."""
    kind = item.get("type")
    if kind == "text":
        return str((item.get("text") or {}).get("body", ""))
    if kind == "interactive":
        interactive = item.get("interactive") or {}
        reply = interactive.get("button_reply") or interactive.get("list_reply") or {}
        return str(reply.get("id", ""))
    if kind == "button":  # a template's quick-reply button
        return str((item.get("button") or {}).get("payload", ""))
    return ""


def _status(item: Mapping[str, Any], phone_number_id: str | None) -> DeliveryStatus:
    status = STATUSES.get(str(item.get("status")))
    if status is None:
        raise ValueError(f"unknown WhatsApp status {item.get('status')!r}")
    error_code: SendErrorCode | None = None
    if status is MessageStatus.FAILED:
        errors = item.get("errors") or [{}]
        error_code = ERROR_CODES.get(str(errors[0].get("code")), SendErrorCode.REJECTED)
    reference = item.get("biz_opaque_callback_data")
    return DeliveryStatus(
        channel=NAME,
        provider_message_id=str(item["id"]),
        status=status,
        error_code=error_code,
        tenant_hint=phone_number_id,
        reference=str(reference) if reference else None,
    )


def _moment(timestamp: object) -> datetime:
    """Meta's epoch seconds as an aware time; a missing one is the epoch, so parsing twice gives the same event."""
    try:
        return datetime.fromtimestamp(int(str(timestamp)), UTC)
    except ValueError:
        return datetime.fromtimestamp(0, UTC)
