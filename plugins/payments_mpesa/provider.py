"""`MpesaProvider`: the kernel's payment contract on top of Daraja's STK push, STK query and C2B."""

from __future__ import annotations

import re
from typing import Any, ClassVar

from pydantic import BaseModel

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
    WebhookRequest,
)
from plugins.payments_mpesa import callbacks
from plugins.payments_mpesa.codes import outcome_of
from plugins.payments_mpesa.runtime import runtime
from plugins.payments_mpesa.settings import Mode, MpesaCredentials
from plugins.payments_mpesa.simulator import DEV_CREDENTIALS

PROVIDER = "mpesa"
_UNSAFE = re.compile(r"[^A-Za-z0-9 ]")
ACCOUNT_REFERENCE_LIMIT = 12
DESCRIPTION_LIMIT = 13
ACK = {"ResultCode": 0, "ResultDesc": "Accepted"}


def safe_text(text: str, limit: int, fallback: str) -> str:
    """Only letters, digits and spaces, at most `limit` of them: Daraja fails silently on anything else."""
    cleaned = " ".join(_UNSAFE.sub("", text).split())[:limit].strip()
    return cleaned or fallback


def whole_shillings(amount: Money) -> int:
    """Daraja takes whole shillings only: refuse anything else before a customer sees a prompt."""
    if amount.currency != "KES":
        raise PaymentError(PaymentErrorCode.INVALID_REQUEST, "M-Pesa collects KES only", retryable=False)
    if amount.amount_minor % 100 or amount.amount_minor == 0:
        raise PaymentError(
            PaymentErrorCode.INVALID_REQUEST, "M-Pesa takes a whole number of shillings, at least 1", retryable=False
        )
    return amount.amount_minor // 100


def msisdn(phone: str | None) -> str:
    """`+254712345678` as Daraja writes it (`254712345678`); only Kenyan numbers can take an STK prompt."""
    if phone is None or not phone.startswith("+254"):
        raise PaymentError(PaymentErrorCode.INVALID_REQUEST, "M-Pesa needs a Kenyan phone number", retryable=False)
    return phone.removeprefix("+")


class MpesaProvider(PaymentProvider):
    name = PROVIDER
    credentials_model: ClassVar[type[BaseModel] | None] = MpesaCredentials

    def __init__(self, kernel: Kernel) -> None:
        self._kernel = kernel
        # Seconds an STK push waits for its callback before reconciliation should ask Daraja (`get_status`).
        self.reconcile_after = runtime(kernel).settings.reconcile_after

    async def initiate(self, intent: PaymentIntent) -> PaymentResult:
        amount = whole_shillings(intent.amount)
        phone = msisdn(intent.customer_phone)
        credentials = await self.credentials(intent.tenant_id)
        connected = runtime(self._kernel).connected
        answer = await connected.ledger.claim(intent.tenant_id, intent.idempotency_key)
        if answer is None:
            try:
                answer = await connected.daraja.stk_push(
                    credentials,
                    Amount=amount,
                    PartyA=phone,
                    PhoneNumber=phone,
                    CallBackURL=self.callback_url(intent.tenant_id),
                    AccountReference=safe_text(intent.reference, ACCOUNT_REFERENCE_LIMIT, "soko"),
                    TransactionDesc=safe_text(intent.description, DESCRIPTION_LIMIT, "Payment"),
                )
            except PaymentError as error:
                # Unavailable may mean the prompt went out and the answer was lost: keep the claim, so a retry
                # waits instead of prompting twice. Any other refusal is definite and may be retried at once.
                if error.code is not PaymentErrorCode.UNAVAILABLE:
                    await connected.ledger.release(intent.tenant_id, intent.idempotency_key)
                raise
            await connected.ledger.record(intent.tenant_id, intent.idempotency_key, answer)
        return PaymentResult(
            PaymentStatus.REQUIRES_ACTION,
            str(answer["CheckoutRequestID"]),
            NextAction.APPROVE_ON_PHONE,
            data={"merchant_request_id": answer.get("MerchantRequestID")},
        )

    async def get_status(self, provider_ref: str, *, tenant_id: str) -> PaymentResult:
        credentials = await self.credentials(tenant_id)
        try:
            answer = await runtime(self._kernel).connected.daraja.stk_query(credentials, provider_ref)
        except PaymentError as error:
            if error.code is PaymentErrorCode.INVALID_REQUEST and "checkoutrequestid" in error.detail.lower():
                raise PaymentError(
                    PaymentErrorCode.NOT_FOUND, error.detail, retryable=False, provider_code=error.provider_code
                ) from error
            raise
        if answer is None:  # 500.001.1001: the customer has not answered yet
            return PaymentResult(PaymentStatus.REQUIRES_ACTION, provider_ref, NextAction.APPROVE_ON_PHONE)
        outcome = outcome_of(answer.get("ResultCode"))
        data: dict[str, Any] = {"result_code": str(answer.get("ResultCode")), "failure": outcome.failure}
        return PaymentResult(outcome.status, provider_ref, data=data)

    async def register_c2b(self, tenant_id: str) -> dict[str, Any]:
        """Register the shop's C2B URLs with Daraja (`soko mpesa register-c2b TENANT`): its per-tenant webhook."""
        url = self.callback_url(tenant_id)
        return await runtime(self._kernel).connected.daraja.register_c2b(
            await self.credentials(tenant_id),
            confirmation_url=f"{url}?{callbacks.C2B_STAGE}=confirmation",
            validation_url=f"{url}?{callbacks.C2B_STAGE}=validation",
        )

    async def verify_webhook(self, request: WebhookRequest) -> bool:
        settings = runtime(self._kernel).settings
        if settings.ip_allowlist and not request.comes_from(str(net) for net in settings.allowed_networks):
            return False
        return request.method == "POST" and callbacks.well_formed(request)

    async def parse_webhook(self, request: WebhookRequest) -> list[PaymentEvent]:
        return callbacks.events(self.name, request)

    def webhook_ack(self, events: Any) -> tuple[dict[str, Any], int]:
        return dict(ACK), 200

    # -- the two places where a shop's settings come from the kernel ------------------------------------------

    async def credentials(self, tenant_id: str) -> MpesaCredentials:
        """The shop's Daraja credentials from the credential store (the simulator's own in simulator mode)."""
        found = await self._kernel.credentials.get(tenant_id, PROVIDER)
        if found is None and runtime(self._kernel).settings.mode is Mode.SIMULATOR:
            return MpesaCredentials.model_validate(DEV_CREDENTIALS)
        if found is None:
            raise PaymentError(
                PaymentErrorCode.MISCONFIGURED,
                f"no M-Pesa credentials for this shop: soko credentials set {tenant_id} {PROVIDER}",
                retryable=False,
            )
        assert isinstance(found, MpesaCredentials)
        return found

    def callback_url(self, tenant_id: str) -> str:
        """Where Daraja calls back for this shop: the public base URL plus the tenant's unguessable path."""
        settings = runtime(self._kernel).settings
        base = str(settings.callback_base_url or f"http://{self._kernel.settings.bind}").rstrip("/")
        return base + self._kernel.webhook_path("payments", PROVIDER, tenant_id)
