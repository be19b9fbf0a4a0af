"""Contract suites every payment provider and messaging channel must pass (the fsspec abstract-tests pattern).

Subclass a suite in your plugin's tests as `class TestMyProvider(PaymentProviderContract)` and provide the
fixtures its docstring lists, at module level or in the class. Point your plugin at a stand-in of the PSP or
platform served on 127.0.0.1 rather than mocking your own client: the contract then covers your HTTP code too.
"""

from __future__ import annotations

import inspect
import json
import re
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import replace
from enum import StrEnum
from typing import Any, ClassVar, NamedTuple, TypeVar

import pytest

from kernel.messaging import (
    ChannelCapability,
    DeliveryStatus,
    InboundMessage,
    MessagingChannel,
    OutboundMessage,
    SendError,
    SendErrorCode,
    SendResult,
    Template,
)
from kernel.payments import (
    PaymentCapability,
    PaymentError,
    PaymentErrorCode,
    PaymentEvent,
    PaymentIntent,
    PaymentProvider,
    PaymentResult,
    UnsupportedOperation,
    WebhookReceiver,
    WebhookRequest,
)

_NAME = re.compile(r"^[a-z][a-z0-9_]*$")
UNKNOWN_REF = "soko-contract-unknown-ref"
SuiteT = TypeVar("SuiteT")


class Handshake(NamedTuple):
    """A platform's GET subscription check: the query it sends, the reply it expects, and a query to refuse."""

    query: Mapping[str, str]
    reply: str
    forged_query: Mapping[str, str]


class _WebhookReceiverContract:
    """What providers and channels share; each suite maps its own fixture onto `receiver`."""

    capability_type: ClassVar[type[StrEnum]]

    def test_name_is_lower_snake_case(self, receiver: WebhookReceiver[Any]) -> None:
        assert isinstance(receiver.name, str)
        assert _NAME.match(receiver.name), f"{receiver.name!r} must be lower_snake_case: it is a URL segment"

    def test_capabilities_are_known_members(self, receiver: Any) -> None:
        assert isinstance(receiver.capabilities, frozenset)
        assert all(isinstance(item, self.capability_type) for item in receiver.capabilities)

    async def test_verify_accepts_valid_webhook(
        self, receiver: WebhookReceiver[Any], valid_webhook: WebhookRequest
    ) -> None:
        assert await receiver.verify_webhook(valid_webhook) is True

    async def test_verify_rejects_forged_webhook(
        self, receiver: WebhookReceiver[Any], forged_webhook: WebhookRequest
    ) -> None:
        assert await receiver.verify_webhook(forged_webhook) is False

    async def test_verify_rejects_empty_body(
        self, receiver: WebhookReceiver[Any], valid_webhook: WebhookRequest
    ) -> None:
        assert await receiver.verify_webhook(replace(valid_webhook, body=b"")) is False

    async def test_parse_gives_stable_distinct_dedupe_keys(
        self, receiver: WebhookReceiver[Any], valid_webhook: WebhookRequest
    ) -> None:
        """The sender retries; the kernel recognises a repeat only by the same keys."""
        first = [event.dedupe_key for event in await receiver.parse_webhook(valid_webhook)]
        again = [event.dedupe_key for event in await receiver.parse_webhook(valid_webhook)]
        assert first == again
        assert all(first)
        assert len(set(first)) == len(first)

    async def test_webhook_ack_is_json_and_2xx(
        self, receiver: WebhookReceiver[Any], valid_webhook: WebhookRequest
    ) -> None:
        for events in ([], await receiver.parse_webhook(valid_webhook)):
            body, status = receiver.webhook_ack(events)
            assert isinstance(body, dict)
            json.dumps(body)
            assert 200 <= status < 300


def _asyncio_marked(suite: type[SuiteT]) -> type[SuiteT]:
    """Mark the suite's coroutine tests (inherited ones too) for pytest-asyncio, so they run in strict mode as in
    auto mode; the loop scope stays the project's (`asyncio_default_test_loop_scope`)."""
    for name in dir(suite):
        test = getattr(suite, name)
        if name.startswith("test_") and inspect.iscoroutinefunction(test):
            marks = getattr(test, "pytestmark", [])
            if not any(mark.name == "asyncio" for mark in marks):
                pytest.mark.asyncio(test)
    return suite


@_asyncio_marked
class PaymentProviderContract(_WebhookReceiverContract):
    """The contract of `PaymentProvider`. Fixtures to provide:

    - `provider`: your `PaymentProvider`, configured against your stand-in PSP.
    - `intent`: a `PaymentIntent` the stand-in accepts, with an idempotency key of its own for each test.
    - `valid_webhook`: a `WebhookRequest` as the stand-in PSP would send it (signed, or from its address).
    - `forged_webhook`: one that must be refused (a wrong signature, or a foreign address for a PSP that signs
      nothing).

    Optional fixtures (override them; the defaults below ask nothing more):

    - `charges`: `async () -> int`, how many charges (prompts, card authorisations) the stand-in has started; the
      contract then counts at the PSP that a retried `initiate` with the same idempotency key charged once.
    - `refused_intents`: intents the stand-in refuses at once (a non-whole amount, a foreign currency); each must
      raise `PaymentError` with a kernel `PaymentErrorCode`.

    Declared operations must be overridden and reach the PSP (on an unknown reference they raise `PaymentError`);
    undeclared ones must raise `UnsupportedOperation`. `get_status` of a reference the PSP does not know must raise
    `PaymentError`. The async tests carry pytest-asyncio's mark: they run in its strict mode as in auto mode.
    """

    capability_type = PaymentCapability

    @pytest.fixture
    def receiver(self, provider: PaymentProvider) -> PaymentProvider:
        return provider

    @pytest.fixture
    def charges(self) -> Callable[[], Awaitable[int]] | None:
        return None

    @pytest.fixture
    def refused_intents(self) -> list[PaymentIntent]:
        return []

    def test_declared_operations_are_implemented(self, provider: PaymentProvider) -> None:
        for capability in (PaymentCapability.REFUND, PaymentCapability.CAPTURE, PaymentCapability.CANCEL):
            if capability in provider.capabilities:
                assert getattr(type(provider), capability) is not getattr(PaymentProvider, capability), (
                    f"{provider.name} declares {capability} but does not override {capability}()"
                )
        if PaymentCapability.PARTIAL_REFUND in provider.capabilities:
            assert PaymentCapability.REFUND in provider.capabilities, "partial_refund implies refund"

    async def test_declared_operations_reach_the_psp(self, provider: PaymentProvider, intent: PaymentIntent) -> None:
        """A declared operation on a reference the PSP does not know is refused by the PSP, not by the plugin."""
        for capability, call in _optional_operations(provider, intent).items():
            if capability in provider.capabilities:
                with pytest.raises(PaymentError) as raised:
                    await call()
                assert isinstance(raised.value.code, PaymentErrorCode)

    async def test_undeclared_operations_raise_unsupported(
        self, provider: PaymentProvider, intent: PaymentIntent
    ) -> None:
        for capability, call in _optional_operations(provider, intent).items():
            if capability not in provider.capabilities:
                with pytest.raises(UnsupportedOperation) as raised:
                    await call()
                assert raised.value.capability is capability

    async def test_initiate_returns_provider_ref(self, provider: PaymentProvider, intent: PaymentIntent) -> None:
        result = await provider.initiate(intent)
        assert isinstance(result, PaymentResult)
        assert result.provider_ref

    async def test_retried_initiate_charges_once(
        self,
        provider: PaymentProvider,
        intent: PaymentIntent,
        charges: Callable[[], Awaitable[int]] | None,
    ) -> None:
        """A caller that lost the answer retries with the same key: it gets the first payment, not a second one."""
        before = await charges() if charges else 0
        first = await provider.initiate(intent)
        again = await provider.initiate(intent)
        assert again.provider_ref == first.provider_ref
        if charges:
            assert await charges() - before == 1, "a retry with the same idempotency key charged again"
        other = await provider.initiate(replace(intent, idempotency_key=f"{intent.idempotency_key}-other"))
        assert other.provider_ref != first.provider_ref, "a new idempotency key must start a new payment"

    async def test_refusals_map_to_payment_error_codes(
        self, provider: PaymentProvider, refused_intents: list[PaymentIntent]
    ) -> None:
        for refused in refused_intents:
            with pytest.raises(PaymentError) as raised:
                await provider.initiate(refused)
            assert isinstance(raised.value.code, PaymentErrorCode)
            assert isinstance(raised.value.retryable, bool)

    async def test_get_status_reports_on_initiated_payment(
        self, provider: PaymentProvider, intent: PaymentIntent
    ) -> None:
        started = await provider.initiate(intent)
        result = await provider.get_status(started.provider_ref, tenant_id=intent.tenant_id)
        assert isinstance(result, PaymentResult)
        assert result.provider_ref == started.provider_ref

    async def test_get_status_of_unknown_ref_raises_payment_error(
        self, provider: PaymentProvider, intent: PaymentIntent
    ) -> None:
        with pytest.raises(PaymentError) as raised:
            await provider.get_status(UNKNOWN_REF, tenant_id=intent.tenant_id)
        assert isinstance(raised.value.code, PaymentErrorCode)
        assert isinstance(raised.value.retryable, bool)

    async def test_parse_gives_events_of_this_provider(
        self, provider: PaymentProvider, valid_webhook: WebhookRequest
    ) -> None:
        events = await provider.parse_webhook(valid_webhook)
        assert events, "the valid webhook should carry at least one event"
        for event in events:
            assert isinstance(event, PaymentEvent)
            assert event.provider == provider.name

    async def test_parse_twice_gives_equal_events(
        self, provider: PaymentProvider, valid_webhook: WebhookRequest
    ) -> None:
        """Redeliveries are recognised by dedupe key and must carry the same facts (amount, receipt, status)."""
        assert await provider.parse_webhook(valid_webhook) == await provider.parse_webhook(valid_webhook)


class MessagingChannelContract(_WebhookReceiverContract):
    """The contract of `MessagingChannel`. Fixtures to provide:

    - `channel`: your `MessagingChannel`, configured against your stand-in platform.
    - `outbound`: a text `OutboundMessage` the stand-in accepts. With `TEMPLATES` declared, the stand-in must
      also accept that message carrying the template `soko_contract` (language `en`, one parameter).
    - `valid_webhook`: a `WebhookRequest` as the platform would send it, with at least one message or status.
    - `forged_webhook`: one that must be refused.
    - `subscription_handshake`: a `Handshake` for a platform that checks the URL with a GET (WhatsApp), else None.

    Idempotency is declared, not assumed: with `IDEMPOTENT_SEND` a repeated key must return the first message;
    without it the channel promises nothing and callers must accept a possible duplicate on retry.
    """

    capability_type = ChannelCapability

    @pytest.fixture
    def receiver(self, channel: MessagingChannel) -> MessagingChannel:
        return channel

    async def test_send_returns_provider_message_id(self, channel: MessagingChannel, outbound: OutboundMessage) -> None:
        result = await channel.send(outbound)
        assert isinstance(result, SendResult)
        assert result.provider_message_id

    async def test_repeated_idempotency_key_sends_once(
        self, channel: MessagingChannel, outbound: OutboundMessage
    ) -> None:
        if ChannelCapability.IDEMPOTENT_SEND not in channel.capabilities:
            pytest.skip(f"{channel.name} does not declare idempotent_send: a retry may send twice")
        first = await channel.send(outbound)
        again = await channel.send(outbound)
        other = await channel.send(replace(outbound, idempotency_key=f"{outbound.idempotency_key}-other"))
        assert again.provider_message_id == first.provider_message_id
        assert other.provider_message_id != first.provider_message_id

    async def test_templates_follow_capability(self, channel: MessagingChannel, outbound: OutboundMessage) -> None:
        message = replace(outbound, text=None, template=Template("soko_contract", "en", ("1",)))
        if ChannelCapability.TEMPLATES in channel.capabilities:
            assert (await channel.send(message)).provider_message_id
        else:
            with pytest.raises(UnsupportedOperation):
                await channel.send(message)

    def test_verify_subscription(self, channel: MessagingChannel, subscription_handshake: Handshake | None) -> None:
        assert channel.verify_subscription({}) is None
        if subscription_handshake is not None:
            assert channel.verify_subscription(subscription_handshake.query) == subscription_handshake.reply
            assert channel.verify_subscription(subscription_handshake.forged_query) is None

    async def test_parse_gives_messages_and_statuses_of_this_channel(
        self, channel: MessagingChannel, valid_webhook: WebhookRequest
    ) -> None:
        items = await channel.parse_webhook(valid_webhook)
        assert items, "the valid webhook should carry at least one message or status"
        for item in items:
            assert isinstance(item, InboundMessage | DeliveryStatus)
            assert item.channel == channel.name
        if any(isinstance(item, DeliveryStatus) for item in items):
            assert ChannelCapability.DELIVERY_RECEIPTS in channel.capabilities


class PlatformChannelContract(MessagingChannelContract):
    """`MessagingChannelContract` plus what a channel to a remote platform (WhatsApp, SMS) must show. Fixtures:

    - `flaky_outbound`: a message the stand-in refuses once with a retryable error (a rate limit), then accepts.
    - `refusals`: `(message, SendErrorCode)` pairs the stand-in refuses, each with the kernel code it must map to;
      cover at least one retryable and one terminal refusal.
    - `delivered`: `async (message) -> int`, how many messages the stand-in holds for that message's recipient:
      the contract counts at the platform, not in the channel.

    A channel that reaches no platform (the development outbox) has nothing to refuse: it passes the base suite.
    """

    async def test_send_retried_with_one_key_delivers_once(
        self,
        channel: MessagingChannel,
        flaky_outbound: OutboundMessage,
        delivered: Callable[[OutboundMessage], Awaitable[int]],
    ) -> None:
        """A caller retries a retryable refusal with the same key; the platform must end up with one message."""
        with pytest.raises(SendError) as refused:
            await channel.send(flaky_outbound)
        assert refused.value.retryable, f"{refused.value.code} should be retryable"
        first = await channel.send(flaky_outbound)
        if ChannelCapability.IDEMPOTENT_SEND in channel.capabilities:
            assert (await channel.send(flaky_outbound)).provider_message_id == first.provider_message_id
        assert await delivered(flaky_outbound) == 1

    async def test_refusals_map_to_kernel_codes(
        self, channel: MessagingChannel, refusals: Sequence[tuple[OutboundMessage, SendErrorCode]]
    ) -> None:
        assert any(code.retryable for _, code in refusals) and any(not code.retryable for _, code in refusals)
        for message, expected in refusals:
            with pytest.raises(SendError) as raised:
                await channel.send(message)
            assert raised.value.code is expected, f"{raised.value.provider_code} should map to {expected}"
            assert raised.value.retryable is expected.retryable
            assert raised.value.provider_code, "keep the platform's own code for support"


def _optional_operations(
    provider: PaymentProvider, intent: PaymentIntent
) -> dict[PaymentCapability, Callable[[], Awaitable[PaymentResult]]]:
    keys = {"tenant_id": intent.tenant_id, "idempotency_key": intent.idempotency_key}
    return {
        PaymentCapability.REFUND: lambda: provider.refund(UNKNOWN_REF, intent.amount, **keys),
        PaymentCapability.CAPTURE: lambda: provider.capture(UNKNOWN_REF, intent.amount, **keys),
        PaymentCapability.CANCEL: lambda: provider.cancel(UNKNOWN_REF, **keys),
    }
