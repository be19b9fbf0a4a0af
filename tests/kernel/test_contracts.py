"""The provider and channel contracts: reference plugins written as a third party would pass the suites, broken
ones fail them, and the kernel's webhook routes verify, parse, emit and acknowledge in that order.

The reference plugins talk HTTP to a stand-in PSP and messaging platform served on 127.0.0.1: no mocks.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import uuid
from collections.abc import AsyncIterator, Callable, Mapping
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
from aiohttp import web
from quart import Response

from kernel import hookimpl
from kernel.app import SokoApp
from kernel.inbox import decode, encode
from kernel.messaging import (
    ChannelCapability,
    DeliveryStatus,
    InboundMessage,
    MessageStatus,
    MessagingChannel,
    OutboundMessage,
    SendError,
    SendErrorCode,
    SendResult,
)
from kernel.payments import (
    Money,
    NextAction,
    PaymentCapability,
    PaymentError,
    PaymentErrorCode,
    PaymentEvent,
    PaymentIntent,
    PaymentProvider,
    PaymentResult,
    PaymentStatus,
    WebhookRequest,
)
from kernel.testing.contracts import (
    Handshake,
    MessagingChannelContract,
    PaymentProviderContract,
    PlatformChannelContract,
)

PSP_SECRET = b"psp-webhook-secret"
APP_SECRET = b"meta-app-secret"
VERIFY_TOKEN = "verify-me"
OPTED_OUT = "+254700000050"
THROTTLED_ONCE = "+254700000429"

# -- the stand-in PSP and messaging platform -------------------------------------------------------------------


@pytest.fixture(scope="module")
async def stand_in() -> AsyncIterator[str]:
    """Serves what the reference plugins call; honours Idempotency-Key as card PSPs and our platform do."""
    payments: dict[str, str] = {}
    messages: dict[str, str] = {}

    async def create_payment(request: web.Request) -> web.Response:
        payment_id = payments.setdefault(request.headers["Idempotency-Key"], f"pay_{len(payments) + 1}")
        return web.json_response({"id": payment_id, "status": "requires_action"}, status=201)

    async def get_payment(request: web.Request) -> web.Response:
        payment_id = request.match_info["payment_id"]
        if payment_id not in payments.values():
            return web.json_response({"error": {"code": "no_such_payment"}}, status=404)
        return web.json_response({"id": payment_id, "status": "requires_action"})

    recipients: dict[str, str] = {}
    throttled: set[str] = set()

    async def send_message(request: web.Request) -> web.Response:
        to = (await request.json())["to"]
        if to == OPTED_OUT:
            return web.json_response({"error": {"code": 131050, "message": "user stopped marketing"}}, status=400)
        key = request.headers["Idempotency-Key"]
        if to == THROTTLED_ONCE and key not in throttled:
            throttled.add(key)
            return web.json_response({"error": {"code": 130429, "message": "rate limit hit"}}, status=429)
        message_id = messages.setdefault(key, f"wamid.{len(messages) + 1}")
        recipients[message_id] = to
        return web.json_response({"messages": [{"id": message_id}]})

    async def count_messages(request: web.Request) -> web.Response:
        return web.json_response({"count": sum(to == request.query["to"] for to in recipients.values())})

    app = web.Application()
    app.router.add_post("/v1/payments", create_payment)
    app.router.add_get("/v1/payments/{payment_id}", get_payment)
    app.router.add_post("/v1/messages", send_message)
    app.router.add_get("/v1/messages/count", count_messages)
    runner = web.AppRunner(app)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    host, port = runner.addresses[0][:2]
    try:
        yield f"http://{host}:{port}"
    finally:
        await runner.cleanup()


@pytest.fixture(scope="module")
async def client(stand_in: str) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=stand_in) as http:
        yield http


def signed(body: bytes, secret: bytes, header: str) -> WebhookRequest:
    """A notification as the stand-in would POST it: the raw body and its HMAC-SHA256 in `header`."""
    signature = "sha256=" + hmac.new(secret, body, hashlib.sha256).hexdigest()
    return WebhookRequest(method="POST", body=body, headers={header: signature}, client_ip="127.0.0.1")


# -- the reference plugins, as a third party would write them ---------------------------------------------------


class ReferencePsp(PaymentProvider):
    """A PSP with an HTTP API and HMAC-signed webhooks."""

    name = "reference_psp"
    signature_header = "X-Signature-256"

    def __init__(self, client: httpx.AsyncClient, webhook_secret: bytes) -> None:
        self._client = client
        self._secret = webhook_secret

    async def initiate(self, intent: PaymentIntent) -> PaymentResult:
        payload = {"amount": intent.amount.amount_minor, "currency": intent.amount.currency, "order": intent.reference}
        headers = {"Idempotency-Key": intent.idempotency_key}
        return self._result(await self._client.post("/v1/payments", json=payload, headers=headers))

    async def get_status(self, provider_ref: str, *, tenant_id: str) -> PaymentResult:
        return self._result(await self._client.get(f"/v1/payments/{provider_ref}"))

    async def verify_webhook(self, request: WebhookRequest) -> bool:
        return request.hmac_sha256_matches(self._secret, self.signature_header)

    async def parse_webhook(self, request: WebhookRequest) -> list[PaymentEvent]:
        event = json.loads(request.body)
        return [
            PaymentEvent(
                provider=self.name,
                dedupe_key=event["id"],
                provider_ref=event["payment"],
                status=PaymentStatus(event["status"]),
                amount=Money(event["amount"], event["currency"]),
                tenant_hint=event["account"],
                receipt=event["receipt"],
                occurred_at=datetime.fromtimestamp(event["created"], UTC),
            )
        ]

    @staticmethod
    def _result(response: httpx.Response) -> PaymentResult:
        if response.is_error:
            code = PaymentErrorCode.NOT_FOUND if response.status_code == 404 else PaymentErrorCode.UNKNOWN
            raise PaymentError(code, retryable=False, provider_code=response.json()["error"]["code"])
        body = response.json()
        status = PaymentStatus(body["status"])
        action = NextAction.APPROVE_ON_PHONE if status is PaymentStatus.REQUIRES_ACTION else None
        return PaymentResult(status=status, provider_ref=body["id"], next_action=action)


WHATSAPP_ERRORS = {
    "130429": SendErrorCode.RATE_LIMITED,
    "131026": SendErrorCode.INVALID_RECIPIENT,
    "131047": SendErrorCode.SESSION_WINDOW_CLOSED,
    "131050": SendErrorCode.OPTED_OUT,
}


class ReferenceChat(MessagingChannel):
    """A WhatsApp-like platform: signed webhooks in Meta's envelope and a GET verify-token handshake."""

    name = "reference_chat"
    capabilities = frozenset(
        {ChannelCapability.TEMPLATES, ChannelCapability.DELIVERY_RECEIPTS, ChannelCapability.IDEMPOTENT_SEND}
    )

    def __init__(self, client: httpx.AsyncClient, app_secret: bytes, verify_token: str) -> None:
        self._client = client
        self._app_secret = app_secret
        self._verify_token = verify_token

    async def send(self, message: OutboundMessage) -> SendResult:
        template = message.template
        content: dict[str, Any] = (
            {"text": {"body": message.text}}
            if template is None
            else {"template": {"name": template.name, "language": template.language, "params": template.parameters}}
        )
        headers = {"Idempotency-Key": message.idempotency_key}
        response = await self._client.post("/v1/messages", json={"to": message.to, **content}, headers=headers)
        if response.is_error:
            error = response.json()["error"]
            raise SendError.classify(error["code"], WHATSAPP_ERRORS, error["message"])
        return SendResult(response.json()["messages"][0]["id"])

    async def verify_webhook(self, request: WebhookRequest) -> bool:
        return request.hmac_sha256_matches(self._app_secret, "X-Hub-Signature-256")

    async def parse_webhook(self, request: WebhookRequest) -> list[InboundMessage | DeliveryStatus]:
        values = [change["value"] for entry in json.loads(request.body)["entry"] for change in entry["changes"]]
        items: list[InboundMessage | DeliveryStatus] = []
        for value in values:
            number_id = value["metadata"]["phone_number_id"]
            items += [
                InboundMessage(
                    channel=self.name,
                    tenant_hint=number_id,
                    sender="+" + message["from"],
                    text=message["text"]["body"],
                    provider_message_id=message["id"],
                    received_at=datetime.fromtimestamp(int(message["timestamp"]), UTC),
                )
                for message in value.get("messages", [])
            ]
            items += [
                DeliveryStatus(self.name, status["id"], MessageStatus(status["status"]))
                for status in value.get("statuses", [])
            ]
        return items

    def verify_subscription(self, query: Mapping[str, str]) -> str | None:
        token = query.get("hub.verify_token", "").encode()
        if query.get("hub.mode") == "subscribe" and hmac.compare_digest(token, self._verify_token.encode()):
            return query.get("hub.challenge")
        return None


def psp_notification(secret: bytes = PSP_SECRET) -> WebhookRequest:
    event = {
        "id": "evt_1",
        "payment": "pay_1",
        "status": "captured",
        "amount": 150_000,
        "currency": "KES",
        "account": "shop-42",
        "receipt": "NLJ7RT61SV",
        "created": 1_764_000_000,
    }
    return signed(json.dumps(event).encode(), secret, ReferencePsp.signature_header)


def chat_notification(secret: bytes = APP_SECRET, *, statuses: bool = True) -> WebhookRequest:
    """Meta's envelope with one inbound message and, unless `statuses` is false, one delivery status."""
    value: dict[str, Any] = {
        "metadata": {"phone_number_id": "1098765"},
        "messages": [{"id": "wamid.in1", "from": "254712345678", "timestamp": "1764000000", "text": {"body": "Hi"}}],
        "statuses": [{"id": "wamid.1", "status": "delivered"}] if statuses else [],
    }
    payload = {"object": "whatsapp_business_account", "entry": [{"changes": [{"field": "messages", "value": value}]}]}
    return signed(json.dumps(payload).encode(), secret, "X-Hub-Signature-256")


HANDSHAKE = Handshake(
    query={"hub.mode": "subscribe", "hub.verify_token": VERIFY_TOKEN, "hub.challenge": "1158201444"},
    reply="1158201444",
    forged_query={"hub.mode": "subscribe", "hub.verify_token": "guess", "hub.challenge": "1158201444"},
)


@pytest.fixture
def provider(client: httpx.AsyncClient) -> ReferencePsp:
    return ReferencePsp(client, PSP_SECRET)


@pytest.fixture
def channel(client: httpx.AsyncClient) -> ReferenceChat:
    return ReferenceChat(client, APP_SECRET, VERIFY_TOKEN)


@pytest.fixture
def intent() -> PaymentIntent:
    return PaymentIntent(
        tenant_id="shop-42",
        reference="order-1001",
        amount=Money(150_000, "KES"),
        idempotency_key="checkout-1001",
        customer_phone="+254712345678",
    )


@pytest.fixture
def outbound() -> OutboundMessage:
    return OutboundMessage(tenant_id="shop-42", to="+254712345678", idempotency_key="notify-1001", text="Paid")


# -- the suites pass for the reference plugins -------------------------------------------------------------------


class TestReferencePsp(PaymentProviderContract):
    @pytest.fixture
    def valid_webhook(self) -> WebhookRequest:
        return psp_notification()

    @pytest.fixture
    def forged_webhook(self) -> WebhookRequest:
        return psp_notification(b"not-the-secret")


class TestReferenceChat(PlatformChannelContract):
    @pytest.fixture
    def valid_webhook(self) -> WebhookRequest:
        return chat_notification()

    @pytest.fixture
    def forged_webhook(self) -> WebhookRequest:
        return chat_notification(b"not-the-secret")

    @pytest.fixture
    def subscription_handshake(self) -> Handshake:
        return HANDSHAKE

    @pytest.fixture
    def flaky_outbound(self, outbound: OutboundMessage) -> OutboundMessage:
        return replace(outbound, to=THROTTLED_ONCE, idempotency_key=f"flaky-{uuid.uuid4().hex}")

    @pytest.fixture
    def refusals(self, outbound: OutboundMessage) -> list[tuple[OutboundMessage, SendErrorCode]]:
        throttled = replace(outbound, to=THROTTLED_ONCE, idempotency_key=f"throttled-{uuid.uuid4().hex}")
        return [(replace(outbound, to=OPTED_OUT), SendErrorCode.OPTED_OUT), (throttled, SendErrorCode.RATE_LIMITED)]

    @pytest.fixture
    def delivered(self, client: httpx.AsyncClient) -> Callable[[OutboundMessage], Any]:
        async def count(message: OutboundMessage) -> int:
            return int((await client.get("/v1/messages/count", params={"to": message.to})).json()["count"])

        return count


# -- ... and fail broken ones ----------------------------------------------------------------------------------


class AcceptsAnyWebhook(ReferencePsp):
    async def verify_webhook(self, request: WebhookRequest) -> bool:
        return True


class ClaimsRefunds(ReferencePsp):
    capabilities = frozenset({PaymentCapability.REFUND})


class EchoesAnyChallenge(ReferenceChat):
    def verify_subscription(self, query: Mapping[str, str]) -> str | None:
        return query.get("hub.challenge")


class SendsEveryTime(ReferenceChat):
    """Claims idempotent sends but makes a fresh key per call, as a careless plugin would."""

    async def send(self, message: OutboundMessage) -> SendResult:
        return await super().send(replace(message, idempotency_key=uuid.uuid4().hex))


class ClassifiesNothing(ReferenceChat):
    """Reports every refusal as `rejected`, so callers can never tell a rate limit from an opt-out."""

    async def send(self, message: OutboundMessage) -> SendResult:
        try:
            return await super().send(message)
        except SendError as error:
            raise SendError(SendErrorCode.REJECTED, retryable=False, provider_code=error.provider_code) from None


async def test_messaging_contract_fails_a_channel_that_does_not_classify_refusals(
    client: httpx.AsyncClient, outbound: OutboundMessage
) -> None:
    with pytest.raises(AssertionError):
        await PlatformChannelContract().test_refusals_map_to_kernel_codes(
            ClassifiesNothing(client, APP_SECRET, VERIFY_TOKEN),
            [(replace(outbound, to=OPTED_OUT), SendErrorCode.OPTED_OUT)],
        )


async def test_payment_contract_fails_a_provider_accepting_forged_webhooks(client: httpx.AsyncClient) -> None:
    with pytest.raises(AssertionError):
        await PaymentProviderContract().test_verify_rejects_forged_webhook(
            AcceptsAnyWebhook(client, PSP_SECRET), psp_notification(b"not-the-secret")
        )


def test_payment_contract_fails_a_capability_without_implementation(client: httpx.AsyncClient) -> None:
    with pytest.raises(AssertionError):
        PaymentProviderContract().test_declared_operations_are_implemented(ClaimsRefunds(client, PSP_SECRET))


def test_messaging_contract_fails_a_handshake_without_token_check(client: httpx.AsyncClient) -> None:
    with pytest.raises(AssertionError):
        MessagingChannelContract().test_verify_subscription(
            EchoesAnyChallenge(client, APP_SECRET, VERIFY_TOKEN), HANDSHAKE
        )


async def test_messaging_contract_fails_a_false_idempotency_claim(
    client: httpx.AsyncClient, outbound: OutboundMessage
) -> None:
    with pytest.raises(AssertionError):
        await MessagingChannelContract().test_repeated_idempotency_key_sends_once(
            SendsEveryTime(client, APP_SECRET, VERIFY_TOKEN), outbound
        )


# -- value types and helpers -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "build",
    [
        lambda: Money(-1, "KES"),
        lambda: Money(10, "kes"),
        lambda: Money(True, "KES"),
        lambda: PaymentIntent("shop-42", "order-1", Money(1, "KES"), idempotency_key=""),
        lambda: PaymentIntent("shop-42", "order-1", Money(1, "KES"), "key", customer_phone="0712345678"),
        lambda: PaymentResult(PaymentStatus.REQUIRES_ACTION, "pay_1"),
        lambda: PaymentEvent(
            "reference_psp", "evt_1", "pay_1", PaymentStatus.CAPTURED, occurred_at=datetime(2026, 1, 1)
        ),
        lambda: OutboundMessage("shop-42", "+254712345678", "key"),
        lambda: DeliveryStatus("reference_chat", "wamid.1", MessageStatus.READ, SendErrorCode.OPTED_OUT),
    ],
)
def test_value_types_refuse_invalid_values(build: Any) -> None:
    with pytest.raises(ValueError, match=r"must|needs|exactly|belongs"):
        build()


def test_webhook_headers_ignore_case() -> None:
    assert psp_notification().headers["x-signature-256"].startswith("sha256=")


@pytest.mark.parametrize(
    ("client_ip", "allowed"),
    [
        ("196.201.214.200", True),
        ("::ffff:196.201.213.44", True),
        ("196.201.214.201", False),
        ("<local>", False),
        (None, False),
    ],
)
def test_comes_from_checks_the_allowlist(client_ip: str | None, allowed: bool) -> None:
    request = WebhookRequest(method="POST", body=b"{}", client_ip=client_ip)
    assert request.comes_from(["196.201.214.200/32", "196.201.213.0/24"]) is allowed


async def test_send_errors_are_classified(channel: ReferenceChat, outbound: OutboundMessage) -> None:
    with pytest.raises(SendError) as raised:
        await channel.send(OutboundMessage("shop-42", OPTED_OUT, "notify-optout", text="Sale!"))
    assert (raised.value.code, raised.value.retryable, raised.value.provider_code) == (
        SendErrorCode.OPTED_OUT,
        False,
        "131050",
    )
    assert SendError.classify(130429, WHATSAPP_ERRORS).retryable is True
    assert SendError.classify("999", WHATSAPP_ERRORS).code is SendErrorCode.REJECTED


# -- the kernel's webhook routes ---------------------------------------------------------------------------------


class Recorder:
    """A plugin that contributes the reference plugins and keeps what the kernel emits."""

    def __init__(self, provider: PaymentProvider, channel: MessagingChannel) -> None:
        self.provider = provider
        self.channel = channel
        self.emitted: list[PaymentEvent | InboundMessage | DeliveryStatus] = []

    @hookimpl
    def register_payment_providers(self) -> list[PaymentProvider]:
        return [self.provider]

    @hookimpl
    def register_messaging_channels(self) -> list[MessagingChannel]:
        return [self.channel]

    @hookimpl
    async def payment_event(self, event: PaymentEvent) -> None:
        self.emitted.append(event)

    @hookimpl
    def message_received(self, message: InboundMessage) -> None:
        self.emitted.append(message)


@pytest.fixture
def recorder(provider: ReferencePsp, channel: ReferenceChat) -> Recorder:
    return Recorder(provider, channel)


@pytest.fixture
def app(make_app: Callable[..., SokoApp], recorder: Recorder) -> SokoApp:
    return make_app(extra=[("recorder", recorder)])


async def post(app: SokoApp, path: str, webhook: WebhookRequest) -> tuple[int, Any]:
    response = await app.test_client().post(path, data=webhook.body, headers=dict(webhook.headers))
    return response.status_code, await response.get_json()


async def test_payment_events_survive_the_inbox_codec(provider: ReferencePsp) -> None:
    """The inbox stores events as JSON and the job rebuilds them: the rebuilt event equals the parsed one.
    (Delivery through the inbox and the worker is tested end to end in tests/plugins/payments/test_inbox.py.)"""
    events = await provider.parse_webhook(psp_notification())
    assert [decode(*encode(event)) for event in events] == events
    assert [event.dedupe_key for event in events] == ["evt_1"]


async def test_forged_webhook_is_refused_before_parsing(app: SokoApp, recorder: Recorder) -> None:
    forged = WebhookRequest(method="POST", body=b"not json", headers={ReferencePsp.signature_header: "sha256=00"})
    status, body = await post(app, "/webhooks/payments/reference_psp", forged)
    assert (status, body["code"], "detail" in body) == (401, "unauthorized", False)
    assert recorder.emitted == []


async def test_unreadable_verified_body_is_a_validation_error(app: SokoApp) -> None:
    unreadable = signed(b"not json", PSP_SECRET, ReferencePsp.signature_header)
    status, body = await post(app, "/webhooks/payments/reference_psp", unreadable)
    assert (status, body["code"]) == (400, "validation_error")


@pytest.mark.parametrize("path", ["/webhooks/payments/stripe", "/webhooks/messaging/telegram"])
async def test_unknown_receiver_is_not_found_without_naming_others(app: SokoApp, path: str) -> None:
    status, body = await post(app, path, psp_notification())
    assert (status, body["code"]) == (404, "not_found")
    assert "reference" not in json.dumps(body)


async def test_messages_and_statuses_survive_the_inbox_codec(channel: ReferenceChat) -> None:
    items = await channel.parse_webhook(chat_notification())
    received_at = datetime.fromtimestamp(1_764_000_000, UTC)
    assert items[0] == InboundMessage("reference_chat", "1098765", "+254712345678", "Hi", "wamid.in1", received_at)
    assert [decode(*encode(item)) for item in items] == items
    assert [item.dedupe_key for item in items] == ["wamid.in1", "wamid.1:delivered"]


async def test_subscription_handshake_answers_only_the_right_token(app: SokoApp) -> None:
    async def handshake(token: str) -> Response:
        query = {"hub.mode": "subscribe", "hub.verify_token": token, "hub.challenge": "42"}
        return await app.test_client().get("/webhooks/messaging/reference_chat", query_string=query)

    accepted, refused = await handshake(VERIFY_TOKEN), await handshake("guess")
    assert (accepted.status_code, accepted.mimetype, await accepted.get_data(as_text=True)) == (200, "text/plain", "42")
    assert refused.status_code == 401
