"""CORS: which browser origins may call the API with the user's credentials, and the preflight answer.

An origin is allowed when it is one of the panel origins, or a storefront of the tenant the request is bound to
(its host is one of that tenant's hosts, by tenancy). A request bound to no tenant (platform routes) admits panel
origins only, so one tenant's storefront can never read another tenant's responses with a shared customer's
cookies. A preflight comes before tenant resolution, so it compares the origin's tenant with the tenant of the
request's Host: another store's storefront is refused (a page on a sibling subdomain would otherwise be let send
the CSRF header with a tossed cookie); on a host that names no store (the platform's, with a tenant header) any
active tenant's storefront is admitted, and the actual response is still refused its
`Access-Control-Allow-Origin` unless the tenants match. Every response says `Vary: Origin`, so no cache serves one
origin's answer to another.

`same_store` answers the CSRF check's question: may this origin make a cookie-authenticated change here? Only
the request's own origin, a panel origin, or a storefront of the store the Host names.
"""

from __future__ import annotations

from urllib.parse import urlsplit

from quart import Request, Response

from kernel import Problem, tenant_id_var
from plugins.security.settings import CorsSettings
from plugins.security.storefronts import StorefrontLookup


def is_preflight(request: Request) -> bool:
    return (
        request.method == "OPTIONS"
        and "Origin" in request.headers
        and "Access-Control-Request-Method" in request.headers
    )


class Cors:
    def __init__(self, settings: CorsSettings, storefront_tenant: StorefrontLookup | None) -> None:
        self._panel = frozenset(settings.panel_origins)
        self._schemes = frozenset(settings.storefront_schemes)
        self._storefront_tenant = storefront_tenant
        self._preflight_headers = {
            "Access-Control-Allow-Methods": ", ".join(settings.allow_methods),
            "Access-Control-Allow-Headers": ", ".join(settings.allow_headers),
            "Access-Control-Max-Age": str(settings.max_age_seconds),
        }
        self._expose = ", ".join(settings.expose_headers)

    async def preflight(self, request: Request) -> Response:
        """204 with what may be sent, for an allowed origin; 403 `forbidden` (and nothing allowed) otherwise."""
        origin = request.headers["Origin"]
        host_tenant = await self._tenant_of_host(request.host)
        if host_tenant is not None:
            allowed = await self.same_store(request, origin)
        else:
            allowed = await self._allowed(origin, tenant=None, any_tenant=True)
        if not allowed:
            response = Problem(403, "forbidden", "This origin may not call the API from a browser.").to_response()
            _vary_on_origin(response)
            return response
        response = Response("", status=204)
        response.headers.update(self._preflight_headers)
        self._allow(response, origin)
        return response

    async def decorate(self, request: Request, response: Response) -> None:
        """Allow the response to be read by the request's origin, when it is allowed; always `Vary: Origin`."""
        _vary_on_origin(response)
        origin = request.headers.get("Origin")
        if origin is None:
            return
        if await self._allowed(origin, tenant=tenant_id_var.get()):
            self._allow(response, origin)
            response.headers["Access-Control-Expose-Headers"] = self._expose

    async def same_store(self, request: Request, origin: str) -> bool:
        """Whether `origin` is this request's own, a panel's, or a storefront of the store its Host names."""
        if origin in self._panel:
            return True
        parts = urlsplit(origin)
        if parts.scheme not in {"http", "https"} or not parts.netloc or parts.path:
            return False
        if parts.netloc == request.host:
            return True
        host_tenant = await self._tenant_of_host(request.host)
        return host_tenant is not None and await self._allowed(origin, tenant=host_tenant)

    async def _tenant_of_host(self, host: str) -> str | None:
        return await self._storefront_tenant(host) if self._storefront_tenant is not None and host else None

    async def _allowed(self, origin: str, *, tenant: str | None, any_tenant: bool = False) -> bool:
        """A panel origin, or a storefront of `tenant` (of any active tenant when `any_tenant`)."""
        if origin in self._panel:
            return True
        if tenant is None and not any_tenant:
            return False
        found = await self._storefront_of(origin)
        return found is not None and (tenant is None or found == tenant)

    async def _storefront_of(self, origin: str) -> str | None:
        """The active tenant whose storefront `origin` is, if any."""
        if self._storefront_tenant is None:
            return None
        parts = urlsplit(origin)
        if parts.scheme not in self._schemes or not parts.netloc or parts.path:
            return None
        return await self._storefront_tenant(parts.netloc)

    @staticmethod
    def _allow(response: Response, origin: str) -> None:
        response.headers["Access-Control-Allow-Origin"] = origin
        response.headers["Access-Control-Allow-Credentials"] = "true"
        _vary_on_origin(response)


def _vary_on_origin(response: Response) -> None:
    vary = response.headers.get("Vary")
    if vary is None:
        response.headers["Vary"] = "Origin"
    elif "origin" not in vary.lower():
        response.headers["Vary"] = f"{vary}, Origin"
