"""Daraja's callbacks read as kernel events: STK results and C2B confirmations, checked for shape first.

Daraja signs nothing (anchors §2.7): the per-tenant token in the URL (checked by the kernel), the optional
Safaricom address allowlist and the body's shape are what a forger must get past, and the payments plugin then
checks amount and phone against the intent.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import datetime
from decimal import Decimal, InvalidOperation
from typing import Any

from kernel import Money, PaymentEvent, PaymentStatus, WebhookRequest
from kernel.payments import is_e164
from plugins.payments_mpesa.codes import outcome_of
from plugins.payments_mpesa.daraja import EAT

C2B_STAGE = "c2b"  # query parameter of the registered C2B URLs: `validation` or `confirmation`
C2B_FIELDS = ("TransID", "TransAmount", "BusinessShortCode")


def read(request: WebhookRequest) -> dict[str, Any] | None:
    """The JSON object in the body, or None."""
    try:
        document = json.loads(request.body)
    except ValueError:
        return None
    return document if isinstance(document, dict) else None


def stk_result(document: Mapping[str, Any]) -> Mapping[str, Any] | None:
    """The `stkCallback` of an STK callback with the fields every one carries, else None."""
    body = document.get("Body")
    callback = body.get("stkCallback") if isinstance(body, Mapping) else None
    if not isinstance(callback, Mapping):
        return None
    checkout = callback.get("CheckoutRequestID")
    code = callback.get("ResultCode")
    if not isinstance(checkout, str) or not checkout or isinstance(code, bool) or not isinstance(code, int | str):
        return None
    return callback


def is_c2b(document: Mapping[str, Any]) -> bool:
    return all(isinstance(document.get(name), str) and document[name] for name in C2B_FIELDS)


def well_formed(request: WebhookRequest) -> bool:
    document = read(request)
    return document is not None and (stk_result(document) is not None or is_c2b(document))


def events(provider: str, request: WebhookRequest) -> list[PaymentEvent]:
    document = read(request)
    if document is None:
        raise ValueError("the M-Pesa callback is not a JSON object")
    callback = stk_result(document)
    if callback is not None:
        return [_stk_event(provider, callback)]
    if is_c2b(document):
        # Validation asks whether to accept a payment that has not happened: soko accepts it and decides on the
        # confirmation, which is the payment.
        return [] if request.query.get(C2B_STAGE) == "validation" else [_c2b_event(provider, document)]
    raise ValueError("the M-Pesa callback is neither an STK result nor a C2B payment")


def _stk_event(provider: str, callback: Mapping[str, Any]) -> PaymentEvent:
    checkout = str(callback["CheckoutRequestID"])
    outcome = outcome_of(callback["ResultCode"])
    items = _metadata(callback)  # absent on failure
    paid = outcome.status is PaymentStatus.CAPTURED
    return PaymentEvent(
        provider=provider,
        dedupe_key=checkout,
        provider_ref=checkout,
        status=outcome.status,
        amount=_money(items.get("Amount")) if paid else None,
        receipt=_text(items.get("MpesaReceiptNumber")),
        occurred_at=_eat(items.get("TransactionDate")),
        payer_phone=_e164(items.get("PhoneNumber")),
        failure=outcome.failure,
    )


def _c2b_event(provider: str, payment: Mapping[str, Any]) -> PaymentEvent:
    transaction = str(payment["TransID"])
    return PaymentEvent(
        provider=provider,
        dedupe_key=transaction,
        provider_ref=transaction,
        status=PaymentStatus.CAPTURED,
        amount=_money(payment["TransAmount"]),
        tenant_hint=str(payment["BusinessShortCode"]),
        receipt=transaction,  # for C2B the transaction id is the M-Pesa receipt
        occurred_at=_eat(payment.get("TransTime")),
        payer_phone=_e164(payment.get("MSISDN")),  # Safaricom masks or hashes it nowadays: often None
        reference=_text(payment.get("BillRefNumber")),
    )


def _metadata(callback: Mapping[str, Any]) -> dict[str, Any]:
    """`CallbackMetadata.Item` as a name -> value map; items without a Value (Balance) are left out."""
    metadata = callback.get("CallbackMetadata")
    items = metadata.get("Item") if isinstance(metadata, Mapping) else None
    if not isinstance(items, list):
        return {}
    return {str(item["Name"]): item["Value"] for item in items if isinstance(item, Mapping) and "Value" in item}


def _money(value: object) -> Money:
    """Daraja's shillings (1.0 in STK callbacks, "10.00" in C2B) as minor units; never through a float sum."""
    try:
        shillings = Decimal(str(value))
    except InvalidOperation:
        raise ValueError(f"unreadable M-Pesa amount {value!r}") from None
    cents = shillings * 100
    if cents != cents.to_integral_value() or cents < 0:
        raise ValueError(f"M-Pesa amount {value!r} is not a whole number of cents")
    return Money(int(cents), "KES")


def _eat(value: object) -> datetime | None:
    """`20191219102115`, Daraja's EAT wall-clock time, as an aware datetime."""
    try:
        return datetime.strptime(str(value), "%Y%m%d%H%M%S").replace(tzinfo=EAT) if value else None
    except ValueError:
        return None


def _e164(value: object) -> str | None:
    """`254712345678` (a number in STK callbacks, a string in C2B) as `+254712345678`; None if it is not one."""
    if value is None or isinstance(value, bool):
        return None
    number = "+" + str(value).strip().removeprefix("+")
    return number if is_e164(number) else None


def _text(value: object) -> str | None:
    return str(value) if value not in (None, "") else None
