"""Per-tenant webhook URL tokens: `/webhooks/payments/mpesa/<token>` says which shop a callback is for.

A token is the tenant id followed by an HMAC-SHA256 of (kind, receiver, tenant id) under `webhook_token_secret`:
stateless (nothing to store or look up), unforgeable without the secret, and bound to one receiver. The route
checks it in constant time before the receiver sees the request.
"""

from __future__ import annotations

import hashlib
import hmac
import uuid

_MAC_HEX = 32  # 128 bits of the HMAC: enough against guessing, short enough for a PSP's URL field


def token(secret: bytes, kind: str, name: str, tenant_id: str) -> str:
    tenant = uuid.UUID(str(tenant_id))
    return tenant.hex + _mac(secret, kind, name, tenant)


def tenant_of(secret: bytes, kind: str, name: str, candidate: str) -> str | None:
    """The tenant a token was made for, or None for anything that is not a valid token of this receiver."""
    if len(candidate) != 32 + _MAC_HEX:
        return None
    try:
        tenant = uuid.UUID(hex=candidate[:32])
    except ValueError:
        return None
    if not hmac.compare_digest(candidate[32:].encode(), _mac(secret, kind, name, tenant).encode()):
        return None
    return str(tenant)


def _mac(secret: bytes, kind: str, name: str, tenant: uuid.UUID) -> str:
    message = f"soko-webhook\x00{kind}\x00{name}\x00{tenant}".encode()
    return hmac.new(secret, message, hashlib.sha256).hexdigest()[:_MAC_HEX]
