"""Content-Security-Policy with a fresh nonce per response.

A policy is rendered to text once, when the plugin is built, and split around its nonce placeholders, so a
response costs one random token and one join. The nonce has 128 bits from the OS's CSPRNG (`secrets`), as CSP3
asks; pages carrying it must not be stored by shared caches, which `Cache-Control: no-store` sees to.
"""

from __future__ import annotations

import secrets
from collections.abc import Sequence

from kernel import RoutePatterns
from plugins.security.settings import NONCE_SOURCE, CspRoute, Directives

NONCE_BYTES = 16


def new_nonce() -> str:
    return secrets.token_urlsafe(NONCE_BYTES)


class CspTemplate:
    def __init__(self, policy: Directives) -> None:
        text = "; ".join(" ".join([name, *sources]) for name, sources in policy.items())
        self._parts = text.split(NONCE_SOURCE)

    def render(self, nonce: str) -> str:
        return f"'nonce-{nonce}'".join(self._parts)


class CspPolicies:
    """The default policy, or the first route-specific one whose routes match the path."""

    def __init__(self, default: Directives, routes: Sequence[CspRoute]) -> None:
        self._default = CspTemplate(default)
        self._routes = [(RoutePatterns(route.routes), CspTemplate(route.policy)) for route in routes]

    def for_path(self, path: str) -> CspTemplate:
        return next((template for patterns, template in self._routes if patterns(path)), self._default)
