"""fakepay: a payment provider with documented-looking behaviour, for soko's own tests.

- Callbacks: POST a JSON body {"ref", "status", "amount_minor", "currency", "phone", "receipt", "account"} signed
  with `X-Fakepay-Signature: sha256=<hmac of the body under the webhook_secret setting>`.
- `initiate` needs the shop's credentials (`soko credentials set TENANT fakepay`); the provider reference encodes
  the outcome `get_status` reports, chosen by the phone's last digit: 1 paid, 2 failed, anything else pending.
- `account` (the credentials' routing key) is the callback's tenant hint.
- Each delivery registers `after_commit` work that logs `fakepay after commit` with the tenant then bound; a
  callback whose receipt is `QUARANTINE` is refused after registering it (`kernel.Quarantine`: rolled back).
- With `hold_dir` set, a delivery finding `<hold_dir>/hold` writes `<hold_dir>/started` and waits for
  `<hold_dir>/release` before it commits: the window in which a test kills the worker.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import time
from pathlib import Path
from typing import ClassVar

from pydantic import BaseModel, ConfigDict, Field, SecretStr

from kernel import (
    Kernel,
    Money,
    NextAction,
    PaymentError,
    PaymentErrorCode,
    PaymentEvent,
    PaymentIntent,
    PaymentProvider,
    PaymentResult,
    PaymentStatus,
    Quarantine,
    WebhookRequest,
    after_commit,
    hookimpl,
    tenant_id_var,
)

log = logging.getLogger("fakepay")

requires = ["tenancy"]

_OUTCOMES = {"1": "paid", "2": "failed"}
_REPORTED = {"paid": PaymentStatus.CAPTURED, "failed": PaymentStatus.FAILED, "pending": PaymentStatus.REQUIRES_ACTION}

HOLD_SECONDS = 120.0  # a held delivery gives up after this, so a test that never releases it cannot hang


class FakepaySettings(BaseModel):
    model_config = ConfigDict(extra="forbid")

    webhook_secret: str = "fakepay-webhook-secret"
    hold_dir: str | None = None
    reconcile_after: float = 1.0


class FakepayCredentials(BaseModel):
    model_config = ConfigDict(extra="forbid")

    account: str = Field(min_length=1, json_schema_extra={"routing_key": True})
    api_key: SecretStr


class Fakepay(PaymentProvider):
    name = "fakepay"
    credentials_model: ClassVar[type[BaseModel]] = FakepayCredentials

    def __init__(self, kernel: Kernel, settings: FakepaySettings) -> None:
        self.kernel = kernel
        self.settings = settings

    async def initiate(self, intent: PaymentIntent) -> PaymentResult:
        if await self.kernel.credentials.get(intent.tenant_id, self.name) is None:
            raise PaymentError(PaymentErrorCode.MISCONFIGURED, "no fakepay credentials", retryable=False)
        outcome = _OUTCOMES.get((intent.customer_phone or "")[-1:], "pending")
        digest = hashlib.sha256(intent.idempotency_key.encode()).hexdigest()[:16]
        return PaymentResult(
            PaymentStatus.REQUIRES_ACTION, f"fp-{outcome}-{digest}", next_action=NextAction.APPROVE_ON_PHONE
        )

    async def get_status(self, provider_ref: str, *, tenant_id: str) -> PaymentResult:
        status = _REPORTED[provider_ref.split("-")[1]]
        action = NextAction.APPROVE_ON_PHONE if status is PaymentStatus.REQUIRES_ACTION else None
        return PaymentResult(status, provider_ref, next_action=action)

    async def verify_webhook(self, request: WebhookRequest) -> bool:
        return bool(request.body) and request.hmac_sha256_matches(
            self.settings.webhook_secret.encode(), "X-Fakepay-Signature"
        )

    async def parse_webhook(self, request: WebhookRequest) -> list[PaymentEvent]:
        body = json.loads(request.body)
        amount = Money(body["amount_minor"], body["currency"]) if "amount_minor" in body else None
        return [
            PaymentEvent(
                provider=self.name,
                dedupe_key=body["ref"],
                provider_ref=body["ref"],
                status=PaymentStatus(body["status"]),
                amount=amount,
                receipt=body.get("receipt"),
                payer_phone=body.get("phone"),
                tenant_hint=body.get("account"),
                failure=PaymentErrorCode(body["failure"]) if body.get("failure") else None,
            )
        ]


@hookimpl
def settings_model() -> type[FakepaySettings]:
    return FakepaySettings


@hookimpl
def register_payment_providers(kernel: Kernel) -> list[PaymentProvider]:
    return [Fakepay(kernel, kernel.settings_of("fakepay", FakepaySettings))]


@hookimpl
def piccolo_app() -> str:
    return "soko_fakepay.piccolo_app"


@hookimpl
async def webhook_tenant(kernel: Kernel, receiver: str, event: object) -> str | None:
    if receiver != "fakepay" or not isinstance(event, PaymentEvent) or not event.tenant_hint:
        return None
    return await kernel.credentials.tenant_for("fakepay", event.tenant_hint)


@hookimpl
async def payment_event(kernel: Kernel, event: PaymentEvent) -> None:
    if event.provider != "fakepay":
        return
    await kernel.connection().execute(
        "INSERT INTO fakepay_deliveries (dedupe_key, bound_tenant, status) VALUES ($1, $2, $3)",
        event.dedupe_key,
        tenant_id_var.get(),
        str(event.status),
    )

    async def committed() -> None:
        log.info("fakepay after commit", extra={"dedupe_key": event.dedupe_key, "bound_tenant": tenant_id_var.get()})

    after_commit(committed)
    if event.receipt == "QUARANTINE":
        raise Quarantine("fakepay refuses this one")
    hold_dir = kernel.settings_of("fakepay", FakepaySettings).hold_dir
    if hold_dir and (Path(hold_dir) / "hold").exists():
        (Path(hold_dir) / "started").write_text(event.dedupe_key)
        deadline = time.monotonic() + HOLD_SECONDS
        while not (Path(hold_dir) / "release").exists():
            if time.monotonic() > deadline:
                raise TimeoutError(f"held for {HOLD_SECONDS}s and never released")
            await asyncio.sleep(0.05)
