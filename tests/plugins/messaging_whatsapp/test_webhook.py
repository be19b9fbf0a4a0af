"""Meta's webhooks, read by the plugin: the GET check, signatures over the exact bytes, and the parsed events."""

from __future__ import annotations

import hashlib
import hmac
import json

from pydantic import SecretStr

from kernel import DeliveryStatus, InboundMessage, MessageStatus, SendErrorCode, WebhookRequest
from plugins.messaging_whatsapp import simulator, webhook

SECRET = SecretStr("meta-app-secret")
TOKEN = SecretStr("verify-token-123")


def signed(body: bytes, secret: str = SECRET.get_secret_value()) -> WebhookRequest:
    signature = "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
    return WebhookRequest(method="POST", body=body, headers={"X-Hub-Signature-256": signature})


def inbound_body(text: str) -> bytes:
    _, value = simulator.inbound_value("254712345678", text)
    return simulator.signed_body(simulator.webhook_document("1111", value), SECRET.get_secret_value().encode())[0]


def test_subscription_check_echoes_the_challenge_only_for_the_right_token() -> None:
    query = {"hub.mode": "subscribe", "hub.verify_token": "verify-token-123", "hub.challenge": "1158201444"}
    assert webhook.subscription_reply(query, TOKEN) == "1158201444"
    assert webhook.subscription_reply(query | {"hub.verify_token": "verify-token-124"}, TOKEN) is None
    assert webhook.subscription_reply(query | {"hub.mode": "unsubscribe"}, TOKEN) is None
    assert webhook.subscription_reply(query, None) is None


def test_genuine_body_with_escaped_non_ascii_is_accepted() -> None:
    body = inbound_body("Nimelipa ✅ asante")
    assert b"\\u2705" in body
    assert webhook.signature_valid(signed(body), SECRET)


def test_forged_missing_and_reserialised_signatures_are_refused() -> None:
    body = inbound_body("Nimelipa ✅ asante")
    assert not webhook.signature_valid(signed(body, "another-secret"), SECRET)
    assert not webhook.signature_valid(WebhookRequest(method="POST", body=body), SECRET)
    genuine = signed(body).headers["X-Hub-Signature-256"]
    reserialised = json.dumps(json.loads(body), ensure_ascii=False).encode()  # what a JSON round trip sends
    assert reserialised != body
    forged = WebhookRequest(method="POST", body=reserialised, headers={"X-Hub-Signature-256": genuine})
    assert not webhook.signature_valid(forged, SECRET)
    assert not webhook.signature_valid(signed(body), None)  # no secret configured: nothing is genuine


def test_inbound_messages_carry_the_receiving_number_and_text() -> None:
    [message] = webhook.parse(inbound_body("Habari ✅"))
    assert isinstance(message, InboundMessage)
    assert (message.tenant_hint, message.sender, message.text) == ("1111", "+254712345678", "Habari ✅")


def test_statuses_parse_with_reference_errors_and_stable_keys() -> None:
    accepted = simulator.Accepted("wamid.X", "2222", "254712345678", "text", {}, "our-id", 0.0)
    document = simulator.webhook_document("2222", simulator.status_value(accepted, "failed", 131050))
    body = json.dumps(document).encode()
    [status] = webhook.parse(body)
    assert isinstance(status, DeliveryStatus)
    assert status.status is MessageStatus.FAILED and status.error_code is SendErrorCode.OPTED_OUT
    assert (status.tenant_hint, status.reference) == ("2222", "our-id")
    assert [event.dedupe_key for event in webhook.parse(body)] == [status.dedupe_key]
