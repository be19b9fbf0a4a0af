"""`plugins.security`: response headers, CORS and CSRF (config/security.yaml; docs/security.md explains each key).

Defaults follow OWASP's REST cheat sheet and Helmet, made stricter where an API allows it. In a CSP source list
the placeholder `'nonce'` stands for this response's nonce (`'nonce-…'`).
"""

from __future__ import annotations

import re
from typing import Literal
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, field_validator

from kernel import check_route_pattern

ONE_YEAR = 31_536_000
NONCE_SOURCE = "'nonce'"
_DIRECTIVE = re.compile(r"^[a-z][a-z-]*$")
_TOKEN = re.compile(r"^[A-Za-z0-9!#$%&'*+.^_`|~-]+$")  # an HTTP field-name / method token

Directives = dict[str, list[str]]

API_POLICY: Directives = {
    "default-src": ["'none'"],
    "script-src": [NONCE_SOURCE, "'strict-dynamic'"],
    "style-src": [NONCE_SOURCE],
    "img-src": ["'self'", "data:"],
    "connect-src": ["'self'"],
    "base-uri": ["'none'"],
    "form-action": ["'self'"],
    "frame-ancestors": ["'none'"],
}
# The kernel's /docs page: Swagger UI and its initializer from this server only (no inline script, no CDN);
# Swagger UI sets inline style attributes, hence 'unsafe-inline' for styles.
DOCS_POLICY: Directives = {
    "default-src": ["'none'"],
    "script-src": ["'self'"],
    "style-src": ["'self'", "'unsafe-inline'"],
    "img-src": ["'self'", "data:"],
    "connect-src": ["'self'"],
    "base-uri": ["'none'"],
    "form-action": ["'none'"],
    "frame-ancestors": ["'none'"],
}


def _check_directives(policy: Directives) -> Directives:
    for name, sources in policy.items():
        if not _DIRECTIVE.match(name):
            raise ValueError(f"{name!r} is not a CSP directive name")
        for source in sources:
            if not source or any(char in source for char in ";,\r\n "):
                raise ValueError(f"{name}: {source!r} is not one CSP source")
    return policy


class CspRoute(BaseModel):
    """A whole policy, instead of the default one, for the routes listed (the first matching entry wins)."""

    model_config = ConfigDict(extra="forbid")

    routes: list[str] = Field(min_length=1)
    policy: Directives

    @field_validator("routes")
    @classmethod
    def _routes(cls, value: list[str]) -> list[str]:
        return [check_route_pattern(pattern) for pattern in value]

    @field_validator("policy")
    @classmethod
    def _policy(cls, value: Directives) -> Directives:
        return _check_directives(value)


def origin(text: str) -> str:
    """`scheme://host[:port]` as browsers send it in Origin: lower case, no default port, nothing after."""
    if text.strip() == "*":
        raise ValueError(
            "'*' is not allowed: with credentials, any site could act as your signed-in users; list each origin"
        )
    parts = urlsplit(text.strip())
    if parts.scheme not in {"http", "https"} or not parts.hostname or parts.username or parts.password:
        raise ValueError(f"{text!r} is not an origin like https://panel.example.com")
    if parts.path not in {"", "/"} or parts.query or parts.fragment:
        raise ValueError(f"{text!r} is an origin only without a path, query or fragment")
    default_port = {"http": 80, "https": 443}[parts.scheme]
    port = f":{parts.port}" if parts.port not in {None, default_port} else ""
    return f"{parts.scheme}://{parts.hostname}{port}"


class CorsSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")

    # The staff panel's origins. Tenants' storefront origins are allowed too, when tenancy is enabled.
    panel_origins: list[str] = Field(default_factory=list)
    # A storefront origin is `<scheme>://<a tenant's host>[:port]` with one of these schemes.
    storefront_schemes: list[Literal["https", "http"]] = Field(default_factory=lambda: ["https"])
    allow_methods: list[str] = Field(default_factory=lambda: ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE"])
    allow_headers: list[str] = Field(
        default_factory=lambda: [
            "Authorization",
            "Content-Type",
            "Idempotency-Key",
            "X-CSRF-Token",
            "X-Request-ID",
            "X-Tenant-ID",
        ]
    )
    expose_headers: list[str] = Field(
        default_factory=lambda: ["RateLimit", "RateLimit-Policy", "Retry-After", "X-Request-ID"]
    )
    max_age_seconds: int = Field(default=600, ge=0, le=86_400)

    @field_validator("panel_origins")
    @classmethod
    def _origins(cls, value: list[str]) -> list[str]:
        return [origin(text) for text in value]

    @field_validator("allow_methods", "allow_headers", "expose_headers")
    @classmethod
    def _tokens(cls, value: list[str]) -> list[str]:
        for name in value:
            if name == "*" or not _TOKEN.match(name):
                raise ValueError(f"{name!r}: list each name (no '*': with credentials it is not a wildcard)")
        return value


class CsrfSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")

    # A request carrying this cookie and no bearer token is cookie-authenticated (the staff panel's session).
    session_cookie: str = Field(default="soko_session", pattern=_TOKEN.pattern)
    # Double submit: on unsafe methods the header must repeat this cookie's value.
    token_cookie: str = Field(default="soko_csrf", pattern=_TOKEN.pattern)
    header: str = Field(default="X-CSRF-Token", pattern=_TOKEN.pattern)


class SecuritySettings(BaseModel):
    model_config = ConfigDict(extra="forbid")

    content_security_policy: Directives = Field(default_factory=lambda: dict(API_POLICY))
    csp_routes: list[CspRoute] = Field(default_factory=lambda: [CspRoute(routes=["/docs"], policy=dict(DOCS_POLICY))])
    hsts_max_age_seconds: int = Field(default=ONE_YEAR, ge=ONE_YEAR)
    hsts_preload: bool = False  # opt in only once every subdomain serves HTTPS: preload lists are slow to leave
    referrer_policy: str = Field(default="strict-origin-when-cross-origin", pattern=r"^[a-z-]+(, *[a-z-]+)*$")
    cross_origin_opener_policy: Literal["same-origin", "same-origin-allow-popups", "unsafe-none"] = "same-origin"
    cross_origin_resource_policy: Literal["same-origin", "same-site", "cross-origin"] = "same-origin"
    permissions_policy: dict[str, list[str]] = Field(
        default_factory=lambda: {
            feature: []
            for feature in ("accelerometer", "camera", "geolocation", "gyroscope", "microphone", "payment", "usb")
        }
    )
    # Responses on these routes get `Cache-Control: no-store` (every route, by default: it is an API).
    no_store_routes: list[str] = Field(default_factory=lambda: ["/*"])
    cors: CorsSettings = Field(default_factory=CorsSettings)
    csrf: CsrfSettings = Field(default_factory=CsrfSettings)

    @field_validator("content_security_policy")
    @classmethod
    def _policy(cls, value: Directives) -> Directives:
        return _check_directives(value)

    @field_validator("no_store_routes")
    @classmethod
    def _routes(cls, value: list[str]) -> list[str]:
        return [check_route_pattern(pattern) for pattern in value]
