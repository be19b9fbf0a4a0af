"""payments_mpesa passes the payment provider contract against the Daraja simulator, as a third party's would.

Everything async here is marked or declared for pytest-asyncio, so this module also runs in its strict mode
(test_contract_strict.py runs it that way in a subprocess).
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Awaitable, Callable

import pytest

from kernel import Money, PaymentIntent, PaymentProvider, WebhookRequest
from kernel.kernel import Kernel
from kernel.testing.contracts import PaymentProviderContract
from plugins.payments_mpesa.simulator import DarajaSimulator, Outcome, Push, stk_callback

PHONE = "+254712345678"
SAFARICOM = "196.201.214.207"


class TestMpesaContract(PaymentProviderContract):
    @pytest.fixture
    def provider(self, kernel: Kernel) -> PaymentProvider:
        return kernel.payments["mpesa"]

    @pytest.fixture
    def intent(self, shop: str) -> PaymentIntent:
        return PaymentIntent(shop, "order-1001", Money(150_000, "KES"), uuid.uuid4().hex, PHONE, "Order 1001")

    @pytest.fixture
    def charges(self, simulator: DarajaSimulator) -> Callable[[], Awaitable[int]]:
        async def pushes() -> int:
            return simulator.counters["stk_push_requests"]

        return pushes

    @pytest.fixture
    def refused_intents(self, intent: PaymentIntent) -> list[PaymentIntent]:
        return [
            PaymentIntent(intent.tenant_id, "order-1", Money(150_050, "KES"), uuid.uuid4().hex, PHONE),
            PaymentIntent(intent.tenant_id, "order-2", Money(150_000, "USD"), uuid.uuid4().hex, PHONE),
            PaymentIntent(intent.tenant_id, "order-3", Money(150_000, "KES"), uuid.uuid4().hex, "+447700900123"),
        ]

    @pytest.fixture
    def valid_webhook(self) -> WebhookRequest:
        return callback_from(SAFARICOM)

    @pytest.fixture
    def forged_webhook(self) -> WebhookRequest:
        """Daraja signs nothing: with the allowlist on, a well-formed callback from elsewhere is refused."""
        return callback_from("203.0.113.9")


def callback_from(client_ip: str) -> WebhookRequest:
    push = Push("ws_CO_contract", "1-2-1", "174379", PHONE[1:], 1500, "http://127.0.0.1/", Outcome.SUCCESS)
    return WebhookRequest(method="POST", body=json.dumps(stk_callback(push)).encode(), client_ip=client_ip)
