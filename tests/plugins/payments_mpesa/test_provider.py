"""MpesaProvider against the Daraja simulator: STK push and query, result codes, refusals, tokens, idempotency."""

from __future__ import annotations

import uuid
from dataclasses import replace
from datetime import UTC, datetime

import pytest

from kernel import Money, NextAction, PaymentError, PaymentErrorCode, PaymentIntent, PaymentStatus
from kernel.kernel import Kernel
from kernel.testing.project import eventually
from kernel.testing.services import Database
from plugins.payments_mpesa.codes import outcome_of
from plugins.payments_mpesa.daraja import stk_password, timestamp
from plugins.payments_mpesa.provider import MpesaProvider, safe_text
from plugins.payments_mpesa.simulator import DarajaSimulator, Outcome
from tests.plugins.payments_mpesa.conftest import create_tenant

SUCCEEDS = "+254712345678"


def provider_of(kernel: Kernel) -> MpesaProvider:
    provider = kernel.payments["mpesa"]
    assert isinstance(provider, MpesaProvider)
    return provider


def intent_for(shop: str, phone: str = SUCCEEDS, amount_minor: int = 150_000, **extra: str) -> PaymentIntent:
    return PaymentIntent(
        tenant_id=shop,
        reference=extra.get("reference", "order-7f3a9c2e-1b"),
        amount=Money(amount_minor, "KES"),
        idempotency_key=uuid.uuid4().hex,
        customer_phone=phone,
        description=extra.get("description", "Order #1001 (2 items)"),
    )


def test_timestamp_and_password_are_built_in_east_africa_time() -> None:
    assert timestamp(datetime(2026, 12, 31, 22, 30, 5, tzinfo=UTC)) == "20270101013005"
    assert stk_password("174379", "pk", "20270101013005") == "MTc0Mzc5cGsyMDI3MDEwMTAxMzAwNQ=="


@pytest.mark.parametrize(
    ("text", "limit", "expected"),
    [
        ("order-7f3a9c2e-1b", 12, "order7f3a9c2"),
        ("Order #1001 (2 items)", 13, "Order 1001 2"),
        ("<script>&", 12, "script"),
        ("€€€", 12, "fallback"),
    ],
)
def test_account_reference_and_description_keep_safe_characters(text: str, limit: int, expected: str) -> None:
    assert safe_text(text, limit, "fallback") == expected


async def test_stk_push_asks_for_approval_then_query_reports_it_paid(
    kernel: Kernel, shop: str, simulator: DarajaSimulator
) -> None:
    provider = provider_of(kernel)
    started = await provider.initiate(intent_for(shop))
    assert (started.status, started.next_action) == (PaymentStatus.REQUIRES_ACTION, NextAction.APPROVE_ON_PHONE)
    push = simulator.pushes[started.provider_ref]
    assert (push.amount, push.phone) == (1500, "254712345678")
    assert push.callback_url.startswith("http://127.0.0.1:")
    assert push.callback_url.split("/")[3:6] == ["webhooks", "payments", "mpesa"]
    # Before the customer answers, Daraja says 500.001.1001: still pending, never failed.
    early = await provider.get_status(started.provider_ref, tenant_id=shop)
    assert early.status is PaymentStatus.REQUIRES_ACTION

    async def settled() -> bool:
        result = await provider.get_status(started.provider_ref, tenant_id=shop)
        return result.status is PaymentStatus.CAPTURED

    await eventually(settled, timeout=10, what="STK query to report the payment")


@pytest.mark.parametrize(
    ("outcome", "status", "failure"),
    [
        (Outcome.INSUFFICIENT_FUNDS, PaymentStatus.FAILED, PaymentErrorCode.INSUFFICIENT_FUNDS),
        (Outcome.SUBSCRIBER_LOCKED, PaymentStatus.FAILED, PaymentErrorCode.DECLINED),
        (Outcome.EXPIRED, PaymentStatus.FAILED, PaymentErrorCode.EXPIRED),
        (Outcome.PUSH_ERROR, PaymentStatus.FAILED, PaymentErrorCode.UNAVAILABLE),
        (Outcome.CANCELLED, PaymentStatus.CANCELED, PaymentErrorCode.CANCELED_BY_CUSTOMER),
        (Outcome.UNREACHABLE, PaymentStatus.FAILED, PaymentErrorCode.EXPIRED),
        (Outcome.WRONG_PIN, PaymentStatus.FAILED, PaymentErrorCode.DECLINED),
        (Outcome.SYSTEM_ERROR, PaymentStatus.FAILED, PaymentErrorCode.UNAVAILABLE),
        (Outcome.NO_CALLBACK, PaymentStatus.CAPTURED, None),
    ],
)
async def test_query_maps_each_result_code(
    kernel: Kernel,
    shop: str,
    simulator: DarajaSimulator,
    outcome: Outcome,
    status: PaymentStatus,
    failure: PaymentErrorCode | None,
) -> None:
    phone = "+254711000111"
    simulator.expect(phone, outcome)
    provider = provider_of(kernel)
    started = await provider.initiate(intent_for(shop, phone))

    async def answered() -> object:
        result = await provider.get_status(started.provider_ref, tenant_id=shop)
        return result if result.status is not PaymentStatus.REQUIRES_ACTION else None

    result = await eventually(answered, timeout=10, what=f"the {outcome} push to be answered")
    assert (result.status, result.data["failure"]) == (status, failure)


def test_unknown_result_code_maps_to_unknown() -> None:
    assert (outcome_of(4242).status, outcome_of("4242").failure) == (PaymentStatus.FAILED, PaymentErrorCode.UNKNOWN)
    assert outcome_of("0").status is PaymentStatus.CAPTURED


@pytest.mark.parametrize(
    ("amount_minor", "phone"),
    [(150_050, SUCCEEDS), (0, SUCCEEDS), (150_000, "+255712345678"), (150_000, None)],
)
async def test_unpayable_intents_are_refused_before_any_push(
    kernel: Kernel, shop: str, simulator: DarajaSimulator, amount_minor: int, phone: str | None
) -> None:
    before = simulator.counters["stk_push_requests"]
    with pytest.raises(PaymentError) as raised:
        await provider_of(kernel).initiate(intent_for(shop, phone, amount_minor))  # type: ignore[arg-type]
    assert (raised.value.code, raised.value.retryable) == (PaymentErrorCode.INVALID_REQUEST, False)
    assert simulator.counters["stk_push_requests"] == before


async def test_retried_initiate_pushes_once(kernel: Kernel, shop: str, simulator: DarajaSimulator) -> None:
    provider = provider_of(kernel)
    intent = intent_for(shop)
    before = simulator.counters["stk_push_requests"]
    first = await provider.initiate(intent)
    again = await provider.initiate(intent)
    assert again.provider_ref == first.provider_ref
    assert simulator.counters["stk_push_requests"] == before + 1
    other = await provider.initiate(replace(intent, idempotency_key=uuid.uuid4().hex))
    assert other.provider_ref != first.provider_ref


async def test_token_is_fetched_once_and_refetched_when_daraja_forgets_it(
    kernel: Kernel, shop: str, simulator: DarajaSimulator
) -> None:
    provider = provider_of(kernel)
    before = simulator.counters["token_requests"]
    for _ in range(3):
        await provider.initiate(intent_for(shop))
    assert simulator.counters["token_requests"] == before + 1
    simulator._tokens.clear()  # Daraja revoked every token early
    await provider.initiate(intent_for(shop))
    assert simulator.counters["token_requests"] == before + 2


async def test_wrong_consumer_secret_is_misconfigured(kernel: Kernel, shop: str, simulator: DarajaSimulator) -> None:
    credentials = await provider_of(kernel).credentials(shop)
    wrong = credentials.model_dump() | {"consumer_secret": "guessed", "consumer_key": f"key-{uuid.uuid4().hex}"}
    revealed = {key: getattr(value, "get_secret_value", lambda v=value: v)() for key, value in wrong.items()}
    await kernel.credentials.put(shop, "mpesa", revealed)
    with pytest.raises(PaymentError) as raised:
        await provider_of(kernel).initiate(intent_for(shop))
    assert (raised.value.code, raised.value.retryable) == (PaymentErrorCode.MISCONFIGURED, False)


async def test_unknown_checkout_request_is_not_found(kernel: Kernel, shop: str) -> None:
    with pytest.raises(PaymentError) as raised:
        await provider_of(kernel).get_status("ws_CO_000000", tenant_id=shop)
    assert raised.value.code is PaymentErrorCode.NOT_FOUND


async def test_shop_without_credentials_uses_the_simulators_own(
    kernel: Kernel, mpesa_database: Database, simulator: DarajaSimulator
) -> None:
    tenant = await create_tenant(mpesa_database.owner_url)
    started = await provider_of(kernel).initiate(intent_for(tenant))
    assert simulator.pushes[started.provider_ref].shortcode == "174379"
