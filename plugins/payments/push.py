"""The push job (`payments.push`): ask the provider to start collecting an intent's payment (an STK prompt).

It runs in the worker, enqueued once the request that created the intent committed (`after_commit`), and never
holds a database connection while the provider is called: one short transaction counts the attempt, the call
happens outside, a second one records the answer. At least once is fine: the provider gets the intent's own id
as its idempotency key, so a repeated push (a redelivered job, reconciliation re-pushing a stuck intent) gets the
first prompt's reference back instead of prompting twice, and the `created -> pending` transition happens once.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Awaitable, Callable

from kernel import Kernel, Money, NoTenant, PaymentError, PaymentErrorCode, PaymentIntent, PaymentStatus, tenant_id_var
from plugins.payments import intents
from plugins.payments.outcomes import NAME, Outcome, fail, settle
from plugins.payments.settings import PaymentsSettings
from plugins.payments.states import Status, transition

log = logging.getLogger("soko.payments")

TASK = "payments.push"
ROUTE_KIND = "provider_ref"  # the kernel's webhook route kind that names an intent's tenant by its reference


def provider_key(intent_id: uuid.UUID | str) -> str:
    """The idempotency key the provider sees for an intent: the same on every push of it."""
    return f"intent-{intent_id}"


def push_task(kernel: Kernel) -> Callable[[str], Awaitable[str]]:
    async def push(intent_id: str) -> str:
        return await push_intent(kernel, uuid.UUID(intent_id))

    return push


async def push_intent(kernel: Kernel, intent_id: uuid.UUID) -> str:
    """What became of the intent: `pending`, `failed`, `retry` (the provider asked to wait) or `done` (moved on)."""
    tenant = tenant_id_var.get()
    if tenant is None:
        raise NoTenant("payments.push carries no tenant; it was not run")
    async with kernel.tenant_transaction():
        intent = await intents.count_attempt(kernel.connection(), intent_id)
    if intent is None:
        return "done"
    provider = kernel.payments.get(intent["provider"])
    if provider is None:
        return await _failed(kernel, intent, PaymentErrorCode.MISCONFIGURED)
    request = PaymentIntent(
        tenant_id=tenant,
        reference=str(intent["order_id"]).replace("-", ""),
        amount=Money(intent["amount"], intent["currency"]),
        idempotency_key=provider_key(intent_id),
        customer_phone=intent["phone"],
        description="Order payment",
    )
    try:
        result = await provider.initiate(request)
    except PaymentError as error:
        attempts = kernel.settings_of(NAME, PaymentsSettings).max_push_attempts
        if error.retryable and intent["attempts"] < attempts:
            log.warning(
                "payment push to retry", extra={"intent_id": str(intent_id), "code": str(error.code)}
            )  # reconciliation pushes it again after push_retry_after_seconds
            return "retry"
        return await _failed(kernel, intent, error.code)
    async with kernel.tenant_transaction():
        moved = await transition(kernel.connection(), intent_id, Status.PENDING, provider_ref=result.provider_ref)
        if moved is None:
            return "done"
        await kernel.webhook_routes.claim(provider.name, ROUTE_KIND, result.provider_ref)
        if result.status not in (PaymentStatus.REQUIRES_ACTION, PaymentStatus.PENDING):
            await settle(kernel, moved, Outcome(result.status))  # a provider that settled at once
    return "pending"


async def _failed(kernel: Kernel, intent: dict[str, object], code: PaymentErrorCode) -> str:
    async with kernel.tenant_transaction():
        await fail(kernel, intent, code)
    return "failed"
