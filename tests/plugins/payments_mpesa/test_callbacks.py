"""Daraja callbacks: verified by address and shape, parsed into PaymentEvents, acknowledged as Daraja wants, and
logged with receipts and phone numbers masked."""

from __future__ import annotations

import io
import json
import logging
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from kernel import Money, PaymentErrorCode, PaymentStatus, WebhookRequest
from kernel.kernel import Kernel
from kernel.logs import configure_logging
from kernel.testing.services import Database, Servers
from plugins.payments_mpesa.daraja import EAT
from plugins.payments_mpesa.provider import MpesaProvider
from plugins.payments_mpesa.simulator import DarajaSimulator, Push, stk_callback
from tests.plugins.payments_mpesa.conftest import kernel_of, mpesa_project

CHECKOUT = "ws_CO_191220191020363925"
SAFARICOM = "196.201.214.200"

PAID = {
    "Body": {
        "stkCallback": {
            "MerchantRequestID": "29115-34620561-1",
            "CheckoutRequestID": CHECKOUT,
            "ResultCode": 0,
            "ResultDesc": "The service request is processed successfully.",
            "CallbackMetadata": {
                "Item": [
                    {"Name": "Amount", "Value": 1.0},
                    {"Name": "MpesaReceiptNumber", "Value": "LHG31AA5TX"},
                    {"Name": "Balance"},
                    {"Name": "TransactionDate", "Value": 20191219102115},
                    {"Name": "PhoneNumber", "Value": 254712345678},
                ]
            },
        }
    }
}
CANCELLED = {
    "Body": {
        "stkCallback": {
            "MerchantRequestID": "29115-34620561-1",
            "CheckoutRequestID": CHECKOUT,
            "ResultCode": 1032,
            "ResultDesc": "Request cancelled by user",
        }
    }
}
C2B = {
    "TransactionType": "Pay Bill",
    "TransID": "RKTQDM7W6S",
    "TransTime": "20191122063845",
    "TransAmount": "10.00",
    "BusinessShortCode": "600638",
    "BillRefNumber": "order1001",
    "InvoiceNumber": "",
    "OrgAccountBalance": "49197.00",
    "ThirdPartyTransID": "",
    "MSISDN": "254708374149",
    "FirstName": "John",
    "MiddleName": "",
    "LastName": "Doe",
}


def webhook(body: Any, client_ip: str = SAFARICOM, **query: str) -> WebhookRequest:
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    return WebhookRequest(method="POST", body=raw, client_ip=client_ip, query=query)


def provider_of(kernel: Kernel) -> MpesaProvider:
    provider = kernel.payments["mpesa"]
    assert isinstance(provider, MpesaProvider)
    return provider


@pytest.fixture
def provider(kernel: Kernel) -> MpesaProvider:
    return provider_of(kernel)


async def test_paid_stk_callback_becomes_a_captured_event(provider: MpesaProvider) -> None:
    [event] = await provider.parse_webhook(webhook(PAID))
    assert (event.provider, event.dedupe_key, event.provider_ref, event.status) == (
        "mpesa",
        CHECKOUT,
        CHECKOUT,
        PaymentStatus.CAPTURED,
    )
    assert event.amount == Money(100, "KES")  # Daraja's float 1.0 is one shilling
    assert (event.receipt, event.payer_phone, event.failure) == ("LHG31AA5TX", "+254712345678", None)
    assert event.occurred_at == datetime(2019, 12, 19, 10, 21, 15, tzinfo=EAT)


async def test_failed_stk_callback_has_no_metadata_and_says_why(provider: MpesaProvider) -> None:
    [event] = await provider.parse_webhook(webhook(CANCELLED))
    assert (event.status, event.failure, event.amount, event.receipt) == (
        PaymentStatus.CANCELED,
        PaymentErrorCode.CANCELED_BY_CUSTOMER,
        None,
        None,
    )


async def test_c2b_confirmation_names_order_and_shortcode_and_validation_is_not_an_event(
    provider: MpesaProvider,
) -> None:
    [event] = await provider.parse_webhook(webhook(C2B, c2b="confirmation"))
    assert (event.dedupe_key, event.receipt, event.reference, event.tenant_hint) == (
        "RKTQDM7W6S",
        "RKTQDM7W6S",
        "order1001",
        "600638",
    )
    assert (event.amount, event.payer_phone) == (Money(1000, "KES"), "+254708374149")
    assert await provider.parse_webhook(webhook(C2B, c2b="validation")) == []


async def test_simulator_callbacks_parse_the_same_twice(provider: MpesaProvider) -> None:
    push = Push("ws_CO_1", "1-2-1", "174379", "254712345678", 25, "http://127.0.0.1/", outcome="success")  # type: ignore[arg-type]
    request = webhook(stk_callback(push))
    first, again = await provider.parse_webhook(request), await provider.parse_webhook(request)
    assert first == again
    assert first[0].amount == Money(2500, "KES")


@pytest.mark.parametrize(
    "body",
    [
        b"",
        b"not json",
        [],
        {"Body": {}},
        {"Body": {"stkCallback": {"ResultCode": 0}}},
        {"Body": {"stkCallback": {"CheckoutRequestID": "", "ResultCode": 0}}},
        {"Body": {"stkCallback": {"CheckoutRequestID": CHECKOUT, "ResultCode": True}}},
        {"TransID": "RKTQDM7W6S", "TransAmount": "10.00"},
    ],
)
async def test_malformed_bodies_are_refused(provider: MpesaProvider, body: Any) -> None:
    assert await provider.verify_webhook(webhook(body)) is False


async def test_well_formed_bodies_are_accepted_from_anywhere_without_the_allowlist(
    unlisted: MpesaProvider,
) -> None:
    for body in (PAID, CANCELLED, C2B):
        assert await unlisted.verify_webhook(webhook(body, client_ip="203.0.113.9")) is True


async def test_ack_is_what_daraja_expects(provider: MpesaProvider) -> None:
    assert provider.webhook_ack([]) == ({"ResultCode": 0, "ResultDesc": "Accepted"}, 200)


@pytest.fixture
def unlisted(
    tmp_path: Path, soko_servers: Servers, mpesa_database: Database, simulator: DarajaSimulator
) -> MpesaProvider:
    """A provider of a project that leaves the allowlist off."""
    url = simulator.url  # type: ignore[attr-defined]
    with kernel_of(mpesa_project(tmp_path, soko_servers, mpesa_database, url, ip_allowlist=False)) as kernel:
        return provider_of(kernel)


@pytest.mark.parametrize(
    ("client_ip", "accepted"),
    [
        (SAFARICOM, True),
        ("::ffff:196.201.212.69", True),
        ("203.0.113.9", False),
        ("196.201.214.201", False),
        (None, False),
    ],
)
async def test_allowlist_refuses_callbacks_from_other_addresses(
    provider: MpesaProvider, client_ip: str | None, accepted: bool
) -> None:
    assert await provider.verify_webhook(webhook(PAID, client_ip=client_ip)) is accepted  # type: ignore[arg-type]


def test_logs_mask_receipts_and_msisdns() -> None:
    stream = io.StringIO()
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    configure_logging("INFO", stream=stream)
    try:
        logging.getLogger("soko.test").warning(
            "callback for 254712345678 receipt LHG31AA5TX",
            extra={"phone": 254712345678, "receipt": "NLJ7RT61SV", "body": json.dumps(PAID)},
        )
    finally:
        root.handlers[:] = handlers
        root.setLevel(level)
    line = stream.getvalue()
    for secret in ("254712345678", "LHG31AA5TX", "NLJ7RT61SV"):
        assert secret not in line
    assert "2547******78" in line and "LHG*******" in line
