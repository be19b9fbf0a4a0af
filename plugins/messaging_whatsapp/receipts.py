"""Payment receipts: a paid order (`order_paid`) sends its customer a receipt through the shop's WhatsApp number.

Only shops that connected WhatsApp send one; the others are left alone, silently. The receipt is stored `queued` in
the payment's own transaction, under the key `receipt:<order id>`: that row is the dedupe record, so a callback
delivered again, or a second event for the order, finds it and sends nothing more. Its job is enqueued once the
transaction committed; if that is lost, the sweep sends it. The send then follows the usual rules: free text inside
the 24-hour window, the `receipt` template outside it, or failed `session_window_closed` when none is configured.
"""

from __future__ import annotations

import logging

from kernel import Kernel, Money, OutboundMessage, PaidOrder, after_commit, tenant_id_var
from plugins.messaging_whatsapp import outgoing
from plugins.messaging_whatsapp.runtime import runtime_of

log = logging.getLogger("soko.whatsapp")

PURPOSE = "receipt"
# ISO 4217 currencies without a minor unit; every other one (KES, TZS, USD) has two decimals.
_DECIMALS = {"BIF": 0, "JPY": 0, "RWF": 0, "UGX": 0}


def amount_text(money: Money) -> str:
    """`KES 1,250.00`: the amount as a customer reads it."""
    decimals = _DECIMALS.get(money.currency, 2)
    units = money.amount_minor / 10**decimals
    return f"{money.currency} {units:,.{decimals}f}"


def order_reference(order_id: str) -> str:
    """The order's short reference, as a customer quotes it (the first eight hex digits of its id)."""
    return order_id.replace("-", "")[:8].upper()


def receipt_text(order: PaidOrder) -> tuple[str, tuple[str, ...]]:
    """The receipt's words and its parameters in order (the `receipt` template's `{{1}}` amount, `{{2}}` order)."""
    amount, reference = amount_text(order.total), order_reference(order.order_id)
    return f"Payment received: {amount} for order {reference}. Thank you!", (amount, reference)


async def on_order_paid(kernel: Kernel, order: PaidOrder) -> None:
    tenant_id = tenant_id_var.get()
    if tenant_id is None or order.customer_phone is None:
        return
    runtime = runtime_of(kernel)
    if await runtime.credentials(tenant_id) is None:
        return  # the shop has not connected WhatsApp: no receipt, and nothing wrong
    text, parameters = receipt_text(order)
    message = await outgoing.store_message(
        runtime,
        OutboundMessage(
            tenant_id=tenant_id,
            to=order.customer_phone,
            idempotency_key=f"{PURPOSE}:{order.order_id}",
            text=text,
            purpose=PURPOSE,
            parameters=parameters,
        ),
    )
    if message.status != "queued" or message.attempts:
        return  # this order's receipt exists already

    async def hand_over() -> None:
        await outgoing.enqueue(runtime, message.id)

    after_commit(hand_over)
    log.info("whatsapp receipt queued", extra={"message_id": message.id, "order_id": order.order_id})
