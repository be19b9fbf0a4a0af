"""The kernel's webhook endpoints, one URL per payment provider or messaging channel, so plugins need no routes.

The order is fixed (Medusa PR #16257 acknowledged forged and unroutable callbacks): verify synchronously, then
parse, then hand the events to the hooks, and acknowledge only after that. A failure anywhere answers non-2xx, so
the sender retries instead of the notification being lost; hooks must therefore tolerate repeats.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any, TypeVar

from pydantic import RootModel
from quart import Blueprint, Response, request
from quart_schema import document_response

from kernel import current_kernel
from kernel.messaging import InboundMessage
from kernel.openapi import openapi_extra
from kernel.payments import WebhookReceiver, WebhookRequest
from kernel.problems import Problem

log = logging.getLogger(__name__)

EventT = TypeVar("EventT")
ReceiverT = TypeVar("ReceiverT", bound=WebhookReceiver[Any])


class WebhookAck(RootModel[dict[str, Any]]):
    """The acknowledgement the sender expects; its shape is the provider's or channel's."""


def webhooks_blueprint() -> Blueprint:
    """A fresh blueprint per app (blueprints remember the apps they were registered on)."""
    blueprint = Blueprint("webhooks", __name__, url_prefix="/webhooks")
    blueprint.add_url_rule("/payments/<provider>", view_func=payment_webhook, methods=["POST"])
    blueprint.add_url_rule("/messaging/<channel>", view_func=messaging_handshake, methods=["GET"])
    blueprint.add_url_rule("/messaging/<channel>", view_func=messaging_webhook, methods=["POST"])
    return blueprint


@document_response(WebhookAck)
async def payment_webhook(provider: str) -> tuple[dict[str, Any], int]:
    kernel = current_kernel()
    receiver = _find(kernel.payments, provider)
    events = await _verified_events(receiver)
    for event in events:
        await kernel.emit("payment_event", event=event)
    return receiver.webhook_ack(events)


@openapi_extra(responses={"200": {"description": "The challenge, echoed", "content": {"text/plain": {}}}})
async def messaging_handshake(channel: str) -> Response:
    """Answer the platform's subscription check (WhatsApp's hub.challenge) as plain text, never as HTML."""
    receiver = _find(current_kernel().messaging, channel)
    reply = receiver.verify_subscription(request.args.to_dict())
    if reply is None:
        raise Problem.for_status(401)
    return Response(reply, content_type="text/plain; charset=utf-8")


@document_response(WebhookAck)
async def messaging_webhook(channel: str) -> tuple[dict[str, Any], int]:
    kernel = current_kernel()
    receiver = _find(kernel.messaging, channel)
    items = await _verified_events(receiver)
    for item in items:
        if isinstance(item, InboundMessage):
            await kernel.emit("message_received", message=item)
        else:
            await kernel.emit("message_status", status=item)
    return receiver.webhook_ack(items)


def _find(registry: Mapping[str, ReceiverT], name: str) -> ReceiverT:
    """The named receiver; the 404 does not list the others, which would tell a prober what we run."""
    receiver = registry.get(name)
    if receiver is None:
        raise Problem.for_status(404, "no webhook endpoint here")
    return receiver


async def _verified_events(receiver: WebhookReceiver[EventT]) -> list[EventT]:
    # The client address is taken as the server saw it: honouring X-Forwarded-For from trusted proxies is the
    # job of the proxy-handling middleware, which rewrites `remote_addr` before any view runs.
    webhook = WebhookRequest(
        method=request.method,
        body=await request.get_data(cache=True, as_text=False, parse_form_data=False),
        headers=dict(request.headers.items()),
        query=request.args.to_dict(),
        client_ip=request.remote_addr,
    )
    if not await receiver.verify_webhook(webhook):
        log.warning("webhook rejected", extra={"receiver": receiver.name, "client_ip": webhook.client_ip})
        raise Problem.for_status(401)
    try:
        return await receiver.parse_webhook(webhook)
    except ValueError as error:
        # Genuine but unreadable: the sender may not retry a 400, so this notification is lost unless someone looks.
        log.exception("verified webhook could not be parsed", extra={"receiver": receiver.name})
        raise Problem.for_status(400, "the webhook body could not be read") from error
