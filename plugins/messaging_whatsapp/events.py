"""What the plugin does with Meta's verified events, which the kernel's inbox delivers in the shop's transaction.

- `webhook_tenant`: the shop whose credentials carry the event's `phone_number_id`, or None (the inbox then
  quarantines the event and acknowledges it: never delivered to another shop).
- `message_received`: the customer's last inbound time, which opens the 24-hour window.
- `message_status`: the message moves forward to the reported status; duplicates and late ones change nothing.
"""

from __future__ import annotations

import logging

from kernel import DeliveryStatus, InboundMessage, Kernel
from plugins.messaging_whatsapp import store
from plugins.messaging_whatsapp.runtime import CHANNEL

log = logging.getLogger("soko.whatsapp")


async def tenant_of(kernel: Kernel, event: object) -> str | None:
    hint = getattr(event, "tenant_hint", None)
    if not hint:
        return None
    tenant_id: str | None = await kernel.credentials.tenant_for(CHANNEL, str(hint))
    return tenant_id


async def received(kernel: Kernel, message: InboundMessage) -> None:
    await store.touch_inbound(kernel, message.sender, message.received_at)


async def status_changed(kernel: Kernel, status: DeliveryStatus) -> None:
    moved = await store.apply_status(
        kernel,
        status.provider_message_id,
        status.reference,
        str(status.status),
        None if status.error_code is None else str(status.error_code),
    )
    log.info(
        "whatsapp status",
        extra={
            "status": str(status.status),
            "applied": moved,
            "error_code": status.error_code and str(status.error_code),
        },
    )
