"""Reconciliation (`payments.reconcile`, one job per tenant per period): open intents converge without callbacks.

- `pending` longer than its provider's `reconcile_after`: ask the provider (`get_status`) and apply the answer
  as a callback would (the same `outcomes.settle`, so a callback racing it ends in one transition). Still
  waiting while the order's reservation ran out: `expired`.
- `created` whose order is no longer payable: `cancelled` (nobody was prompted).
- `created` idle longer than `push_retry_after_seconds`: its push job was lost or asked to wait; push again
  (the provider idempotency key makes that safe).

Provider calls happen outside any transaction; each intent's change is a short transaction of its own.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any

from kernel import (
    Kernel,
    NoTenant,
    PaymentError,
    PaymentErrorCode,
    PaymentProvider,
    PaymentResult,
    PaymentStatus,
    periodic_per_tenant,
    tenant_id_var,
)
from plugins.commerce.public import payable_order
from plugins.payments import intents
from plugins.payments.outcomes import NAME, Outcome, settle
from plugins.payments.push import TASK as PUSH_TASK
from plugins.payments.settings import PaymentsSettings
from plugins.payments.states import Status, transition
from plugins.tenancy.public import list_tenants

log = logging.getLogger("soko.payments")

TASK = "payments.reconcile"
BATCH = 200


def reconcile_task(kernel: Kernel) -> Callable[[], Awaitable[dict[str, int]]]:
    async def reconcile() -> dict[str, int]:
        return await reconcile_tenant(kernel)

    return reconcile


async def reconcile_tenant(kernel: Kernel) -> dict[str, int]:
    """One pass over the tenant's open intents; returns how many were asked, moved and re-pushed."""
    tenant = tenant_id_var.get()
    if tenant is None:
        raise NoTenant("payments.reconcile carries no tenant; it was not run")
    settings = kernel.settings_of(NAME, PaymentsSettings)
    async with kernel.tenant_transaction():
        waiting = await intents.open_intents(kernel.connection(), BATCH)
    counts = {"asked": 0, "moved": 0, "pushed": 0}
    for intent in waiting:
        provider = kernel.payments.get(intent["provider"])
        if provider is None:
            continue
        if intent["status"] == Status.CREATED:
            await _created(kernel, intent, settings, counts)
        elif intent["waited"] >= provider.reconcile_after:
            counts["asked"] += 1
            counts["moved"] += await _ask(kernel, provider, intent, tenant) is not None
    return counts


async def _ask(kernel: Kernel, provider: PaymentProvider, intent: dict[str, Any], tenant: str) -> dict[str, Any] | None:
    """Apply what the provider says of a pending intent; one it does not know (yet) waits, unless its order expired."""
    try:
        result = await provider.get_status(intent["provider_ref"], tenant_id=tenant)
    except PaymentError as error:
        log.warning("reconciliation could not ask the provider", extra={"code": str(error.code)})
        if error.code is not PaymentErrorCode.NOT_FOUND:
            return None
        result = None
    async with kernel.tenant_transaction():
        moved = None if result is None else await settle(kernel, intent, Outcome(result.status, _failure(result)))
        if moved is None and (
            result is None or result.status in (PaymentStatus.REQUIRES_ACTION, PaymentStatus.PENDING)
        ):
            moved = await _expire_if_unpayable(kernel, intent)
    return moved


async def _created(kernel: Kernel, intent: dict[str, Any], settings: PaymentsSettings, counts: dict[str, int]) -> None:
    async with kernel.tenant_transaction():
        order = await payable_order(kernel, intent["order_id"])
        if order is None or not order.payable:
            counts["moved"] += await transition(kernel.connection(), intent["id"], Status.CANCELLED) is not None
            return
    if intent["idle"] >= settings.push_retry_after_seconds:
        await kernel.task(PUSH_TASK).kiq(str(intent["id"]))
        counts["pushed"] += 1


async def _expire_if_unpayable(kernel: Kernel, intent: dict[str, Any]) -> dict[str, Any] | None:
    order = await payable_order(kernel, intent["order_id"])
    if order is not None and order.payable:
        return None
    return await transition(kernel.connection(), intent["id"], Status.EXPIRED)


def _failure(result: PaymentResult) -> PaymentErrorCode | None:
    """Why, when the provider said so in `data["failure"]` (a PaymentErrorCode value)."""
    failure = result.data.get("failure")
    if failure is None:
        return None
    try:
        return PaymentErrorCode(str(failure))
    except ValueError:
        return PaymentErrorCode.UNKNOWN


async def _tenant_ids() -> list[str]:
    return [tenant.id for tenant in await list_tenants()]


@asynccontextmanager
async def lifespan(kernel: Kernel) -> AsyncIterator[None]:
    interval = kernel.settings_of(NAME, PaymentsSettings).reconcile_interval_seconds
    async with periodic_per_tenant(kernel, TASK, interval, tenants=_tenant_ids):
        yield
