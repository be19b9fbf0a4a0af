"""The TENANCY stage: bind every request to one tenant, or answer it with a problem.

Precedence (docs/tenancy.md): exempt routes, and requests that match no route or method, get no tenant.
Otherwise the host decides: `{slug}.{base domain}` or a registered custom domain. Only when the host names no
tenant (an IP, the apex, a reserved label such as `api`) does the `X-Tenant-ID` header name one, and only on the
routes configured for it. A header that disagrees with the host is refused, so a header can never move a request
to another tenant. The kernel then runs the view in the bound tenant's transaction.

Per request, on a warm cache: one regex match of the path, one dict lookup for the host, nothing more.
"""

from __future__ import annotations

import logging
import uuid

from quart import Request, Response

from kernel import CallNext, Problem, RequestMiddleware, RoutePatterns, Stage, tenant_id_var
from plugins.tenancy import admin
from plugins.tenancy.directory import TenantDirectory, Unclaimed
from plugins.tenancy.records import TenantRecord, TenantStatus
from plugins.tenancy.settings import TenancySettings

log = logging.getLogger("soko.tenancy")

# The admin API is the platform's, never a tenant's, whatever `exempt_routes` says.
ADMIN_ROUTES = f"{admin.PREFIX}/*"
LOGGED_CHARS = 120


def exempt_routes(settings: TenancySettings) -> RoutePatterns:
    """The routes served with no tenant."""
    return RoutePatterns([*settings.exempt_routes, ADMIN_ROUTES])


class TenancyMiddleware(RequestMiddleware):
    stage = Stage.TENANCY

    def __init__(self, directory: TenantDirectory, settings: TenancySettings) -> None:
        self._directory = directory
        self._exempt = exempt_routes(settings)
        self._header_routes = RoutePatterns(settings.header_routes)
        self._header = settings.header

    async def __call__(self, request: Request, call_next: CallNext) -> Response:
        # A request that routes nowhere (404, 405) has no view to scope: the kernel answers it, tenant or not.
        if request.routing_exception is None and not self._exempt(request.path):
            tenant_id_var.set((await self.resolve(request)).id)
        return await call_next()

    async def resolve(self, request: Request) -> TenantRecord:
        """The active tenant the request is for; a 404, 403 or 400 problem otherwise."""
        header = request.headers.get(self._header)
        if header is not None and not self._header_routes(request.path):
            header = None
        found = await self._directory.for_host(request.host)
        if found is Unclaimed.HOST:
            found = None if header is None else await self._directory.for_id(header)
        elif found is not None and header is not None and _canonical(header) != found.id:
            raise Problem(400, "tenant_mismatch", f"The {self._header} header names another store than the host.")
        if found is None:
            log.info(
                "tenant not found",
                extra={"host": _printable(request.headers.get("Host")), "tenant_header": _printable(header)},
            )
            raise Problem(404, "tenant_not_found", "No store is served at this address.")
        if found.status is TenantStatus.SUSPENDED:
            raise Problem(403, "tenant_suspended", "This store is suspended.")
        return found


def _canonical(text: str) -> str | None:
    try:
        return str(uuid.UUID(text))
    except ValueError:
        return None


def _printable(text: str | None) -> str | None:
    """Bounded and free of control characters: what a client sent is not trusted to be either."""
    if text is None:
        return None
    shown = "".join(char if char.isprintable() else "?" for char in text[:LOGGED_CHARS])
    return shown + "..." if len(text) > LOGGED_CHARS else shown
