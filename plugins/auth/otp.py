"""Customer sign-in codes: issue one (replacing any live one), and check one against its attempt limit.

Every number is treated alike, known or not: a first verified code creates the customer, so a request for an
unknown number does exactly the same work and gets exactly the same answer as one for a known number.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta

from kernel import OutboundMessage, Problem, SendError, count_otp_send, tenant_id_var
from plugins.auth import hashing
from plugins.auth.runtime import Auth
from plugins.auth.tables import one, run

log = logging.getLogger("soko.auth")


async def request_code(auth: Auth, phone: str) -> None:
    """Store a fresh code's hash for `phone` and send the code through the configured channel."""
    tenant_id = str(tenant_id_var.get())
    code = hashing.new_code()
    expires_at = datetime.now(UTC) + timedelta(seconds=auth.settings.otp_ttl_seconds)
    row = await one(
        "INSERT INTO auth_otp_codes (phone, code_hash, expires_at) VALUES ({}, {}, {}) "
        "ON CONFLICT (tenant_id, phone) DO UPDATE SET code_hash = EXCLUDED.code_hash, attempts = 0, "
        "expires_at = EXCLUDED.expires_at, used_at = NULL, created_at = now(), id = gen_random_uuid() "
        "RETURNING id::text",
        phone,
        hashing.code_digest(auth.keyring.pepper, tenant_id, phone, code),
        expires_at,
    )
    assert row is not None
    minutes = auth.settings.otp_ttl_seconds // 60
    message = OutboundMessage(
        tenant_id=tenant_id,
        to=phone,
        idempotency_key=f"auth-otp-{row['id']}",
        text=f"Your sign-in code is {code}. It expires in {minutes} minutes. Never share it.",
        purpose="otp",  # a channel that must use a template (WhatsApp's authentication template) sends the code
        parameters=(code,),
    )
    try:
        await auth.otp_channel().send(message)
    except SendError as error:  # the raise rolls the stored code back: no code lives that nobody received
        count_otp_send(auth.settings.otp_channel, "failed")
        log.warning("sign-in code not sent", extra={"otp_id": row["id"], "send_error": str(error.code)})
        raise Problem(503, "service_unavailable", "The code could not be sent; try again shortly.") from None
    count_otp_send(auth.settings.otp_channel, "sent")
    log.info("sign-in code sent", extra={"otp_id": row["id"], "channel": auth.settings.otp_channel})


async def check_code(auth: Auth, phone: str, code: str) -> bool:
    """Whether `code` is the live code of `phone`: used at most once, within its life and attempt limit.

    A wrong code counts an attempt; at the limit the code is locked and even the right one is refused. The
    caller must commit on failure too, or the count would be rolled back.
    """
    tenant_id = str(tenant_id_var.get())
    offered = hashing.code_digest(auth.keyring.pepper, tenant_id, phone, code)
    row = await one(
        "SELECT id, code_hash, attempts, expires_at, used_at FROM auth_otp_codes WHERE phone = {} FOR UPDATE", phone
    )
    if row is None:
        hashing.same(offered, offered)  # the same work as for a known number
        return False
    live = row["used_at"] is None and row["expires_at"] > datetime.now(UTC)
    allowed = row["attempts"] < auth.settings.otp_max_attempts
    matches = hashing.same(offered, row["code_hash"])
    if live and allowed and matches:
        await run("UPDATE auth_otp_codes SET used_at = now() WHERE id = {}", row["id"])
        return True
    if live and allowed:
        await run("UPDATE auth_otp_codes SET attempts = attempts + 1 WHERE id = {}", row["id"])
    log.info("sign-in code refused", extra={"otp_id": str(row["id"]), "attempts": row["attempts"] + 1})
    return False


async def customer_for(phone: str) -> str:
    """The customer id of `phone`, created on first sign-in."""
    row = await one(
        "INSERT INTO auth_customers (phone) VALUES ({}) ON CONFLICT (tenant_id, phone) "
        "DO UPDATE SET phone = EXCLUDED.phone RETURNING id::text",
        phone,
    )
    assert row is not None
    return str(row["id"])
