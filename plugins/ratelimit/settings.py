"""`plugins.ratelimit`: the policies and how to behave when Redis is in trouble (config/ratelimit.yaml).

The defaults here are the specification's; config/ratelimit.yaml spells them out for integrators to tune, and a
test keeps the two equal.
"""

from __future__ import annotations

from enum import StrEnum
from ipaddress import IPv4Network, IPv6Network
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from kernel import check_route_pattern

_METHODS = {"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "*"}


class KeyKind(StrEnum):
    """What a policy counts by. A request without a value for a key (no `phone` in its body) is not counted by it."""

    CLIENT_IP = "client_ip"  # the socket peer, or X-Forwarded-For behind a trusted proxy
    PROVIDER_IP = "provider_ip"  # the same address, named for webhooks: the caller is the provider
    PHONE = "phone"  # the JSON body's `phone`, in E.164 (kernel.fields rules)
    EMAIL = "email"  # the JSON body's `email`, trimmed and case-folded
    CART_ID = "cart_id"  # the JSON body's `cart_id`
    ORDER_ID = "order_id"  # the JSON body's `order_id` (an order comes from one cart: paying it counts per cart)
    TENANT = "tenant"  # the tenant the request is bound to


BODY_KEYS = frozenset({KeyKind.PHONE, KeyKind.EMAIL, KeyKind.CART_ID, KeyKind.ORDER_ID})


class Policy(BaseModel):
    """`limit` requests per `window_seconds`, counted separately for each value of each key in `keys`."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(pattern=r"^[a-z][a-z0-9_-]{0,39}$")
    routes: list[str] = Field(min_length=1)  # "POST /payments/*": a method (or *) and a path glob
    limit: int = Field(ge=1, le=100_000)
    window_seconds: int = Field(ge=1, le=86_400)
    keys: list[KeyKind] = Field(min_length=1)
    failure: Literal["open", "closed"] = "open"  # without Redis: serve unlimited, or refuse with 503

    @field_validator("routes")
    @classmethod
    def _routes(cls, routes: list[str]) -> list[str]:
        return [_route(route) for route in routes]

    @field_validator("keys")
    @classmethod
    def _distinct(cls, keys: list[KeyKind]) -> list[KeyKind]:
        if len(set(keys)) != len(keys):
            raise ValueError("each key may appear once")
        return keys


def _route(text: str) -> str:
    """`post  /payments/*` -> `POST /payments/*`; anything else that is not a method and a path is refused."""
    method, _, path = text.strip().partition(" ")
    method, path = method.upper(), path.strip()
    if method not in _METHODS or not path:
        raise ValueError(f"route {text!r} must be a method (or *) and a path glob, e.g. 'POST /payments/*'")
    return f"{method} {check_route_pattern(path)}"


DEFAULT_POLICIES = [
    Policy(
        name="auth",
        routes=["POST /auth/login", "POST /auth/otp/request", "POST /auth/otp/verify"],
        limit=5,
        window_seconds=60,
        keys=[KeyKind.CLIENT_IP, KeyKind.PHONE, KeyKind.EMAIL],
    ),
    Policy(
        name="payments",
        routes=["POST /payments/*", "POST /checkout"],
        limit=10,
        window_seconds=60,
        keys=[KeyKind.CART_ID, KeyKind.ORDER_ID],
    ),
    Policy(name="webhooks", routes=["POST /webhooks/*"], limit=60, window_seconds=60, keys=[KeyKind.PROVIDER_IP]),
    # The store's ceiling: a busy store takes many carts' payments a minute; a flood across made-up carts stops here.
    Policy(
        name="payments_tenant",
        routes=["POST /payments/*", "POST /checkout"],
        limit=600,
        window_seconds=60,
        keys=[KeyKind.TENANT],
    ),
    Policy(
        name="token_refresh",
        routes=["POST /auth/token/refresh"],
        limit=30,
        window_seconds=60,
        keys=[KeyKind.CLIENT_IP],
    ),
]


class RateLimitSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")

    policies: list[Policy] = Field(default_factory=lambda: list(DEFAULT_POLICIES))
    # The longest a request waits on Redis (connect, script, reply); past it the policies' failure modes apply.
    redis_timeout_ms: int = Field(default=100, ge=5, le=5_000)
    # Proxies whose X-Forwarded-For is believed (CIDRs). Empty: the socket peer is the client, whatever it says.
    trusted_proxies: list[IPv4Network | IPv6Network] = Field(default_factory=list)
    # At most one "Redis unavailable" warning per this many seconds per process; the rest are counted in it.
    log_every_seconds: float = Field(default=10.0, gt=0, le=3_600)

    @model_validator(mode="after")
    def _unique_names(self) -> RateLimitSettings:
        names = [policy.name for policy in self.policies]
        duplicates = sorted({name for name in names if names.count(name) > 1})
        if duplicates:
            raise ValueError(f"policy names must be unique; repeated: {', '.join(duplicates)}")
        return self
