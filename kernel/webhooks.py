"""The kernel's webhook endpoints, one URL per payment provider or messaging channel, so plugins need no routes.

The order is fixed (Medusa PR #16257 acknowledged forged and unroutable callbacks): check the per-tenant token
if the URL has one (an invalid one is 404 and the receiver never sees the request), verify, parse, store every
event in the inbox and enqueue its job, and acknowledge only after that. Nothing domain-specific runs in the
request (kernel.inbox applies events in the worker). A failure before the events are stored answers non-2xx, so
the sender retries instead of the notification being lost; repeats are recognised by their dedupe keys.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any, TypeVar

from pydantic import RootModel
from quart import Blueprint, Response, request
from quart_schema import document_response

from kernel import current_kernel, inbox, webhook_tokens
from kernel.kernel import Kernel
from kernel.metrics import count_webhook
from kernel.openapi import openapi_extra, problem_responses
from kernel.payments import WebhookReceiver, WebhookRequest
from kernel.problems import Problem

log = logging.getLogger(__name__)

EventT = TypeVar("EventT")
ReceiverT = TypeVar("ReceiverT", bound=WebhookReceiver[Any])
_REFUSED = "`unauthorized`: the request did not verify (signature, token or sender)"
_NOWHERE = "`not_found`: no webhook endpoint here (an unknown receiver or an invalid tenant token)"
_WEBHOOK_PROBLEMS = {
    400: "`validation_error`: genuine, but the body could not be read",
    401: _REFUSED,
    404: _NOWHERE,
}


class WebhookAck(RootModel[dict[str, Any]]):
    """The acknowledgement the sender expects; its shape is the provider's or channel's."""


def webhooks_blueprint() -> Blueprint:
    """A fresh blueprint per app (blueprints remember the apps they were registered on)."""
    blueprint = Blueprint("webhooks", __name__, url_prefix="/webhooks")
    blueprint.add_url_rule("/payments/<provider>", view_func=payment_webhook, methods=["POST"])
    # The per-tenant URLs: the same views under endpoints of their own (OpenAPI operation ids are endpoint names).
    blueprint.add_url_rule(
        "/payments/<provider>/<token>", "payment_webhook_of_tenant", view_func=payment_webhook, methods=["POST"]
    )
    blueprint.add_url_rule("/messaging/<channel>", view_func=messaging_handshake, methods=["GET"])
    blueprint.add_url_rule(
        "/messaging/<channel>/<token>", "messaging_handshake_of_tenant", view_func=messaging_handshake, methods=["GET"]
    )
    blueprint.add_url_rule("/messaging/<channel>", view_func=messaging_webhook, methods=["POST"])
    blueprint.add_url_rule(
        "/messaging/<channel>/<token>", "messaging_webhook_of_tenant", view_func=messaging_webhook, methods=["POST"]
    )
    return blueprint


@document_response(WebhookAck)
@openapi_extra(responses=problem_responses(_WEBHOOK_PROBLEMS))
async def payment_webhook(provider: str, token: str | None = None) -> tuple[dict[str, Any], int]:
    kernel = current_kernel()
    receiver = _find(kernel.payments, provider)
    tenant = _tenant_of(kernel, "payments", provider, token)
    events = await _verified_events(receiver, tenant)
    await inbox.store(kernel, "payments", receiver.name, events, tenant)
    return receiver.webhook_ack(events)


@openapi_extra(
    responses={"200": {"description": "The challenge, echoed", "content": {"text/plain": {}}}}
    | problem_responses({401: _REFUSED, 404: _NOWHERE})
)
async def messaging_handshake(channel: str, token: str | None = None) -> Response:
    """Answer the platform's subscription check (WhatsApp's hub.challenge) as plain text, never as HTML."""
    kernel = current_kernel()
    receiver = _find(kernel.messaging, channel)
    _tenant_of(kernel, "messaging", channel, token)
    reply = receiver.verify_subscription(request.args.to_dict())
    if reply is None:
        raise Problem.for_status(401)
    return Response(reply, content_type="text/plain; charset=utf-8")


@document_response(WebhookAck)
@openapi_extra(responses=problem_responses(_WEBHOOK_PROBLEMS))
async def messaging_webhook(channel: str, token: str | None = None) -> tuple[dict[str, Any], int]:
    kernel = current_kernel()
    receiver = _find(kernel.messaging, channel)
    tenant = _tenant_of(kernel, "messaging", channel, token)
    items = await _verified_events(receiver, tenant)
    await inbox.store(kernel, "messaging", receiver.name, items, tenant)
    return receiver.webhook_ack(items)


def _find(registry: Mapping[str, ReceiverT], name: str) -> ReceiverT:
    """The named receiver; the 404 does not list the others, which would tell a prober what we run."""
    receiver = registry.get(name)
    if receiver is None:
        raise Problem.for_status(404, "no webhook endpoint here")
    return receiver


def _tenant_of(kernel: Kernel, kind: str, name: str, token: str | None) -> str | None:
    """The tenant a per-tenant URL names; an invalid token is the same 404 as an unknown receiver."""
    if token is None:
        return None
    tenant = webhook_tokens.tenant_of(kernel.webhook_secret(), kind, name, token)
    if tenant is None:
        log.warning("webhook with an invalid tenant token refused", extra={"receiver": name})
        raise Problem.for_status(404, "no webhook endpoint here")
    return tenant


async def _verified_events(receiver: WebhookReceiver[EventT], tenant: str | None) -> list[EventT]:
    # The client address is taken as the server saw it: honouring X-Forwarded-For from trusted proxies is the
    # job of the proxy-handling middleware, which rewrites `remote_addr` before any view runs.
    webhook = WebhookRequest(
        method=request.method,
        body=await request.get_data(cache=True, as_text=False, parse_form_data=False),
        headers=dict(request.headers.items()),
        query=request.args.to_dict(),
        client_ip=request.remote_addr,
        tenant_id=tenant,
    )
    if not await receiver.verify_webhook(webhook):
        count_webhook(receiver.name, "rejected")
        log.warning("webhook rejected", extra={"receiver": receiver.name, "client_ip": webhook.client_ip})
        raise Problem.for_status(401)
    try:
        return await receiver.parse_webhook(webhook)
    except ValueError as error:
        count_webhook(receiver.name, "unreadable")
        # Genuine but unreadable: the sender may not retry a 400, so this notification is lost unless someone looks.
        log.exception("verified webhook could not be parsed", extra={"receiver": receiver.name})
        raise Problem.for_status(400, "the webhook body could not be read") from error
