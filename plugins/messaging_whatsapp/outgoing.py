"""How a message becomes a stored, queued WhatsApp message: its content, its template fallback, its send job.

Plugins call the channel (`kernel.messaging["whatsapp"].send(...)`, or `queue_message` through `public.py`); staff
call `POST /messages/whatsapp`. All of them store the message under its idempotency key first, so one key is one
message at Meta however often it is asked for.
"""

from __future__ import annotations

import logging

from redis.exceptions import RedisError
from taskiq.exceptions import SendTaskError

from kernel import OutboundMessage
from plugins.messaging_whatsapp import graph, store
from plugins.messaging_whatsapp.runtime import PLUGIN, WhatsApp
from plugins.messaging_whatsapp.settings import WhatsAppSettings

log = logging.getLogger("soko.whatsapp")
SEND_TASK = f"{PLUGIN}.send"


def compose(settings: WhatsAppSettings, message: OutboundMessage) -> tuple[graph.Content, graph.Content | None]:
    """The content to send and, for free text with a configured purpose, the template to send outside the window.

    A purpose whose template is `use: always` (sign-in codes) goes as that template from the start.
    """
    configured = settings.template_for(message.purpose)
    if message.template is not None:
        authentication = (
            configured is not None and configured.name == message.template.name and configured.authentication
        )
        return graph.kernel_template_content(message.template, authentication=authentication), None
    assert message.text is not None
    if configured is None:
        return graph.text_content(message.text), None
    template = graph.template_content(
        configured.name,
        configured.language,
        graph.template_components(message.parameters, authentication=configured.authentication),
    )
    if configured.use == "always":
        return template, None
    return graph.text_content(message.text), template


async def store_message(runtime: WhatsApp, message: OutboundMessage) -> store.MessageRow:
    """The message of its idempotency key, stored `queued` when new (in the caller's tenant transaction)."""
    content, fallback = compose(runtime.settings, message)
    return await store.insert(
        runtime.kernel, message.idempotency_key, message.to, content, fallback=fallback, purpose=message.purpose
    )


async def enqueue(runtime: WhatsApp, message_id: str) -> None:
    """Hand the message to the send job once its row committed; if the queue is down, the sweep sends it later."""
    try:
        await runtime.kernel.task(SEND_TASK).kiq(message_id)
    except (SendTaskError, RedisError, OSError):  # taskiq wraps the broker's errors in SendTaskError
        log.warning(
            "whatsapp message stored but not enqueued; the sweep will send it", extra={"message_id": message_id}
        )
