"""One send attempt of a stored message, shared by the send job, the retry sweep and the channel's `send`.

The message row is the dedupe record: an attempt first claims the row (`queued` and due, or abandoned by a dead
worker), so a redelivered job, a second worker or the sweep finding it taken, sent or failed does nothing. The
Graph call happens outside any transaction; its outcome is recorded in a short one afterwards.

Meta takes no idempotency key. Our message id travels as `biz_opaque_callback_data` and comes back in every
status webhook, so a send whose answer was lost (timeout, a worker killed mid-call) is recognised as taken when
its first status arrives, before its lease runs out and the sweep would send it again.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx

from kernel import Kernel, SendError, SendErrorCode, tenant_id_var
from plugins.messaging_whatsapp import graph, store
from plugins.messaging_whatsapp.credentials import WhatsAppCredentials
from plugins.messaging_whatsapp.runtime import WhatsApp
from plugins.messaging_whatsapp.settings import WhatsAppSettings

log = logging.getLogger("soko.whatsapp")

# Waiting for a throughput token happens in place; it is never long at 80/s.
MAX_TOKEN_WAIT_SECONDS = 2.0


@dataclass(frozen=True)
class Attempted:
    """How an attempt ended: the message as it now stands and, when Meta refused it, why."""

    message: store.MessageRow | None
    error: SendError | None = None


@asynccontextmanager
async def tenant_tx(kernel: Kernel, tenant_id: str) -> AsyncIterator[None]:
    """The caller's transaction when one is open for this tenant (a request), else a short one of our own."""
    if kernel.in_transaction():
        if tenant_id_var.get() != tenant_id:
            raise RuntimeError("the open transaction belongs to another tenant than the message")
        yield
        return
    async with kernel.tenant_transaction(tenant_id):
        yield


def backoff_seconds(settings: WhatsAppSettings, attempts: int, retry_after: float | None) -> float:
    """Exponential backoff with full jitter, never sooner than Meta asked (the pair pacing for 131056)."""
    ceiling = min(settings.backoff_max_seconds, settings.backoff_base_seconds * 2 ** max(0, attempts - 1))
    return max(random.uniform(ceiling / 2, ceiling), retry_after or 0.0)


async def attempt(runtime: WhatsApp, tenant_id: str, message_id: str, *, wait_inline: bool = False) -> Attempted:
    """Claim the message and send it once; retryable refusals are rescheduled, terminal ones recorded.

    `wait_inline` (the channel's own `send`, whose caller is waiting) waits out pair pacing in place instead of
    rescheduling, and does not wait for a retry time: the caller retrying is the retry.
    """
    kernel, settings = runtime.kernel, runtime.settings
    async with tenant_tx(kernel, tenant_id):
        message = await store.claim(kernel, message_id, settings.lease_seconds, due_only=not wait_inline)
        if message is None:
            return Attempted(await store.get(kernel, message_id))
    credentials = await runtime.credentials(tenant_id)
    try:
        if credentials is None:
            raise SendError(SendErrorCode.MISCONFIGURED, "the shop has no WhatsApp credentials", retryable=False)
        content = await _content_for_window(runtime, tenant_id, message)
        await _paced(runtime, credentials, message, wait_inline=wait_inline)
        provider_message_id = await post(runtime, credentials, message.recipient, content, message.id)
    except SendError as error:
        return Attempted(await _record_refusal(runtime, tenant_id, message, error), error)
    async with tenant_tx(kernel, tenant_id):
        await store.record_accepted(kernel, message.id, provider_message_id)
        stored = await store.get(kernel, message.id)
    log.info("whatsapp message accepted", extra={"message_id": message.id, "attempts": message.attempts})
    return Attempted(stored)


async def post(
    runtime: WhatsApp, credentials: WhatsAppCredentials, to: str, content: graph.Content, reference: str
) -> str:
    """One `POST /<phone_number_id>/messages`; Meta's message id, or a classified `SendError`."""
    headers = {"Authorization": f"Bearer {credentials.access_token.get_secret_value()}"}
    try:
        response = await runtime.client().post(
            f"/{credentials.phone_number_id}/messages", json=graph.payload(to, content, reference), headers=headers
        )
    except httpx.TransportError as error:
        raise graph.transport_error(error) from None
    if response.is_error:
        raise graph.send_error(response, pair_interval=runtime.settings.pair_interval_seconds)
    try:
        return str(response.json()["messages"][0]["id"])
    except (ValueError, KeyError, IndexError, TypeError):
        # Meta may hold the message: retrying blindly could send it twice; its status webhook will tell.
        raise SendError(SendErrorCode.REJECTED, "unreadable Graph answer", retryable=False) from None


async def _content_for_window(runtime: WhatsApp, tenant_id: str, message: store.MessageRow) -> graph.Content:
    """Free text inside the 24-hour window; the purpose's template outside it; else refused before calling Meta."""
    if not graph.is_free_form(message.content):
        return message.content
    kernel = runtime.kernel
    async with tenant_tx(kernel, tenant_id):
        if await within_window(runtime, message.recipient):
            return message.content
        fallback = message.fallback
        if fallback is None:
            raise SendError(SendErrorCode.SESSION_WINDOW_CLOSED, "outside the 24-hour service window", retryable=False)
        await store.replace_content(kernel, message.id, fallback)
    return fallback


async def within_window(runtime: WhatsApp, customer: str) -> bool:
    """Whether the customer wrote to the shop within the service window (in the tenant's transaction)."""
    last = await store.last_inbound(runtime.kernel, customer)
    window = timedelta(hours=runtime.settings.service_window_hours)
    return last is not None and last > datetime.now(UTC) - window


async def _paced(
    runtime: WhatsApp, credentials: WhatsAppCredentials, message: store.MessageRow, *, wait_inline: bool
) -> None:
    pacing = runtime.pacer()
    waited = 0.0
    while (wait := await pacing.token_wait(credentials.phone_number_id)) > 0:
        if waited + wait > MAX_TOKEN_WAIT_SECONDS:
            raise SendError(
                SendErrorCode.RATE_LIMITED,
                "number throughput",
                retryable=True,
                provider_code="pacing",
                retry_after=wait,
            )
        waited += wait
        await asyncio.sleep(wait)
    while (wait := await pacing.pair_wait(credentials.phone_number_id, message.recipient)) > 0:
        if not wait_inline:
            raise SendError(
                SendErrorCode.RATE_LIMITED, "pair pacing", retryable=True, provider_code="pacing", retry_after=wait
            )
        await asyncio.sleep(wait)


async def _record_refusal(
    runtime: WhatsApp, tenant_id: str, message: store.MessageRow, error: SendError
) -> store.MessageRow | None:
    kernel, settings = runtime.kernel, runtime.settings
    paced_only = error.provider_code == "pacing"  # our own pacing: Meta never saw it, so no attempt is used up
    retry = error.retryable and (paced_only or message.attempts < settings.max_attempts)
    extra: dict[str, Any] = {
        "message_id": message.id,
        "send_error": str(error.code),
        "provider_code": error.provider_code,
        "attempts": message.attempts,
    }
    async with tenant_tx(kernel, tenant_id):
        if retry:
            delay = error.retry_after if paced_only else backoff_seconds(settings, message.attempts, error.retry_after)
            await store.record_retry(
                kernel,
                message.id,
                error,
                datetime.now(UTC) + timedelta(seconds=delay or 0.0),
                refund_attempt=paced_only,
            )
            log.info("whatsapp send deferred", extra=extra | {"retry_in_s": round(delay or 0.0, 2)})
        else:
            await store.record_failed(kernel, message.id, error)
            log.warning("whatsapp send failed", extra=extra)
        return await store.get(kernel, message.id)
