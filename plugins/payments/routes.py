"""The payment routes: a guest starts paying the order they placed and follows it; staff see what to refund."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field
from quart import Blueprint, request

from kernel import (
    CleanStr,
    MobileNumber,
    Model,
    Problem,
    after_commit,
    current_kernel,
    openapi_extra,
    operation_id,
    problem_responses,
    validate_request,
    validate_response,
)
from plugins.auth.public import require_staff
from plugins.commerce.public import payable_order
from plugins.payments import intents
from plugins.payments.push import TASK as PUSH_TASK
from plugins.payments.states import Status, transition

# Mobile money moves whole units of these currencies (M-Pesa takes whole shillings): refuse cents up front,
# before anything is stored or any prompt is sent.
WHOLE_UNITS_ONLY = frozenset({"KES"})
_NOT_FOUND = "`payment_not_found`: no payment has this id"


class NewIntent(Model):
    order_id: CleanStr = Field(min_length=1, max_length=64)
    provider: str = Field(min_length=1, max_length=64, pattern=r"^[a-z][a-z0-9_]*$")
    phone: MobileNumber


class Intent(BaseModel):
    id: str
    order_id: str
    status: str
    amount: int
    currency: str
    provider: str
    failure_code: str | None
    refund_required: bool
    created_at: str
    updated_at: str


class Refund(BaseModel):
    id: str
    order_id: str
    status: str
    amount: int
    currency: str
    provider: str
    provider_ref: str | None
    receipt: str | None
    settled_at: str | None


class Refunds(BaseModel):
    refunds: list[Refund]


def payments_blueprint() -> Blueprint:
    blueprint = Blueprint("payments", __name__)

    @blueprint.post("/payments/intents")
    @openapi_extra(
        responses=problem_responses(
            {
                400: "`idempotency_key_missing`",
                404: "`order_not_found`: no order has this id",
                409: "`order_not_payable`; `payment_in_progress` (with its `intent_id`); `idempotency_key_reused`",
                422: "`provider_not_available`: the shop takes no payments by it; `amount_not_whole`",
            }
        ),
        links={
            "201": {
                "get_intent": {
                    "operationId": operation_id("get", "payments.get_intent"),
                    "parameters": {"path.intent_id": "$response.body#/id"},
                }
            }
        },
    )
    @validate_request(NewIntent)
    @validate_response(Intent, 201)
    async def create_intent(data: NewIntent) -> tuple[dict[str, Any], int]:
        """Start paying an order: the amount is the order's. The prompt goes out from the worker after commit."""
        kernel = current_kernel()
        key = request.headers.get("Idempotency-Key", "").strip()
        if not key:
            raise Problem(400, "idempotency_key_missing", "Send an Idempotency-Key header.")
        if data.provider not in kernel.payments:
            raise Problem(422, "provider_not_available", f"This shop takes no payments by {data.provider!r}.")
        order = await payable_order(kernel, data.order_id)
        if order is None:
            raise Problem(404, "order_not_found", f"No order has the id {data.order_id}.")
        if not order.payable:
            raise Problem(409, "order_not_payable", f"This order cannot be paid: it is {order.status}.")
        if order.currency in WHOLE_UNITS_ONLY and order.total_minor % 100:
            raise Problem(422, "amount_not_whole", f"{order.currency} payments take whole units only.")
        if order.total_minor <= 0:
            raise Problem(409, "order_not_payable", "This order has nothing to pay.")
        intent = await intents.create(
            kernel.connection(),
            order_id=order.id,
            amount=order.total_minor,
            currency=order.currency,
            provider=data.provider,
            phone=data.phone,
            key=key,
        )

        async def push() -> None:
            await kernel.task(PUSH_TASK).kiq(intent["id"])

        after_commit(push)  # a lost enqueue is caught by reconciliation, which re-pushes what stays `created`
        return intent, 201

    @blueprint.get("/payments/intents/<intent_id>")
    @openapi_extra(responses=problem_responses({404: _NOT_FOUND}))
    @validate_response(Intent)
    async def get_intent(intent_id: str) -> dict[str, Any]:
        parsed = intents.parse_id(intent_id)
        found = None if parsed is None else await intents.get(current_kernel().connection(), parsed)
        if found is None:
            raise Problem(404, "payment_not_found", f"No payment has the id {intent_id}.")
        return found

    @blueprint.get("/admin/payments/refunds")
    @require_staff()
    @validate_response(Refunds)
    async def list_refunds() -> dict[str, Any]:
        """Payments that succeeded for orders that could no longer take them: give the money back."""
        return {"refunds": await intents.refunds(current_kernel().connection())}

    @blueprint.post("/admin/payments/intents/<intent_id>/refunded")
    @openapi_extra(
        responses=problem_responses(
            {404: _NOT_FOUND, 409: "`payment_not_refundable`: only a succeeded payment can be refunded"}
        )
    )
    @require_staff()
    @validate_response(Intent)
    async def record_refund(intent_id: str) -> dict[str, Any]:
        """Record that the money of a succeeded payment went back to the customer (refunded by hand)."""
        connection = current_kernel().connection()
        parsed = intents.parse_id(intent_id)
        if parsed is None or await intents.get(connection, parsed) is None:
            raise Problem(404, "payment_not_found", f"No payment has the id {intent_id}.")
        moved = await transition(connection, parsed, Status.REFUNDED)
        if moved is None:
            raise Problem(409, "payment_not_refundable", "Only a succeeded payment can be refunded.")
        return intents.public(moved)

    return blueprint
