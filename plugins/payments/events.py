"""Provider callbacks (`payment_event`), delivered by the kernel's webhook inbox in the intent's tenant transaction.

The event is matched to its intent by provider reference and checked against it before anything changes: a
success must carry the intent's amount and currency, the payer's phone (when the provider names one) must be
the intent's, and the receipt must not belong to another intent. A mismatch changes nothing and is quarantined
(`kernel.Quarantine`) for an operator, with the reason in words that hold no phone number or receipt.
"""

from __future__ import annotations

import logging
from typing import Any

import asyncpg

from kernel import Kernel, Money, PaymentEvent, PaymentStatus, Quarantine
from plugins.payments import intents
from plugins.payments.outcomes import Outcome, settle

log = logging.getLogger("soko.payments")


class UnknownReference(LookupError):
    """No intent of this tenant has the event's reference (yet): the inbox retries, then quarantines it.

    Retrying covers the one honest cause, a callback that overtook the commit of the push that stored the
    reference; a forged or foreign reference ends quarantined after the inbox's last attempt.
    """


async def on_payment_event(kernel: Kernel, event: PaymentEvent) -> None:
    connection = kernel.connection()
    intent = await intents.by_provider_ref(connection, event.provider, event.provider_ref)
    if intent is None:
        if event.reference is not None:  # a paybill/till payment no intent started: not ours to match
            log.warning("payment event for no intent left alone", extra={"provider": event.provider})
            return
        raise UnknownReference(f"no payment intent has the {event.provider} reference {event.provider_ref}")
    if event.status is PaymentStatus.CAPTURED:
        reason = await _mismatch(connection, intent, event)
        if reason is not None:
            log.warning(
                "payment event refused: %s",
                reason,
                extra={"intent_id": str(intent["id"]), "payer_phone": event.payer_phone, "receipt": event.receipt},
            )
            raise Quarantine(f"intent {intent['id']}: {reason}")
    await settle(kernel, intent, Outcome(event.status, event.failure, event.receipt))


async def _mismatch(connection: asyncpg.Connection, intent: dict[str, Any], event: PaymentEvent) -> str | None:
    if event.amount != Money(intent["amount"], intent["currency"]):
        return "the amount paid is not the intent's amount"
    if event.payer_phone is not None and event.payer_phone != intent["phone"]:
        return "the payer's phone is not the intent's phone"
    if event.receipt is not None and await intents.receipt_used_elsewhere(
        connection, event.provider, event.receipt, intent["id"]
    ):
        return "the receipt was already used by another payment"
    return None
