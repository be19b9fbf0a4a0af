"""The Redis keys a request counts against: one per (policy, key kind) that has a value in this request.

Key scheme: `{<tenant>}:<namespace>:ratelimit:<policy>:<kind>:<digest>`.
- `{<tenant>}` is a Redis Cluster hash tag and comes first, so it is the tag whatever the namespace holds. It is
  the request's tenant id (`{-}` when the route has none), so all the keys of one request fall in one slot and
  the one Lua script may touch them all. The cost: a tenant's limit keys share a slot, and tenant-less routes
  (webhooks) all share the `{-}` slot.
- `<namespace>` is the `queue_name` setting, so deployments sharing a Redis never count for each other.
- `<digest>` is a BLAKE2b digest of the normalized value: phone numbers and e-mail addresses never appear in
  Redis in clear, and a client-chosen value (a cart id) cannot make a key long.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from pydantic import TypeAdapter, ValidationError
from quart import Request

from kernel import PhoneNumber, json_body, tenant_id_var
from plugins.ratelimit.settings import BODY_KEYS, KeyKind, Policy

NO_TENANT = "-"
_PHONE = TypeAdapter(PhoneNumber)


@dataclass(frozen=True, slots=True)
class Counter:
    """One sliding window: a policy's count for one value of one of its keys."""

    policy: Policy
    redis_key: str


class CounterKeys:
    def __init__(self, namespace: str, client_address: Callable[[Request], str]) -> None:
        self._namespace = namespace
        self._client_address = client_address

    async def for_request(self, request: Request, policies: Sequence[Policy]) -> list[Counter]:
        """Parse the body only when a matched policy counts by something in it; a body that is JSON only in name
        is refused (400) by `json_body` before anything is counted, as the view would refuse it."""
        kinds = {kind for policy in policies for kind in policy.keys}
        tenant = tenant_id_var.get()
        values: dict[KeyKind, str | None] = {KeyKind.TENANT: tenant}
        if kinds & {KeyKind.CLIENT_IP, KeyKind.PROVIDER_IP}:
            values[KeyKind.CLIENT_IP] = values[KeyKind.PROVIDER_IP] = self._client_address(request)
        if kinds & BODY_KEYS:
            values |= _body_values(await json_body(request), kinds & BODY_KEYS)
        tag = tenant or NO_TENANT
        return [
            Counter(policy, self._key(tag, policy, kind, value))
            for policy in policies
            for kind in policy.keys
            if (value := values.get(kind)) is not None
        ]

    def _key(self, tag: str, policy: Policy, kind: KeyKind, value: str) -> str:
        digest = hashlib.blake2b(value.encode(), digest_size=16).hexdigest()
        return f"{{{tag}}}:{self._namespace}:ratelimit:{policy.name}:{kind}:{digest}"


def _body_values(body: Any, kinds: set[KeyKind]) -> dict[KeyKind, str | None]:
    """Normalized values of the body's `phone`, `email`, `cart_id` and `order_id`; a missing or odd-typed field
    counts as none."""
    if not isinstance(body, dict):
        return {}
    raw = {kind: body.get(str(kind)) for kind in kinds}
    text = {kind: str(value).strip() for kind, value in raw.items() if isinstance(value, str | int)}
    normalize = {KeyKind.PHONE: _phone, KeyKind.EMAIL: str.casefold, KeyKind.CART_ID: str, KeyKind.ORDER_ID: str}
    return {kind: normalize[kind](value) for kind, value in text.items() if value}


def _phone(text: str) -> str:
    """E.164 by the kernel's rules (`0712 345 678` = `254712345678` = `+254712345678`); invalid numbers as sent,
    since the route refuses them anyway."""
    try:
        return _PHONE.validate_python(text)
    except ValidationError:
        return text
