"""The AUTH stage: who the request acts for, from a bearer token or a staff session cookie.

- No tenant bound (health, webhooks, the platform's /tenancy API with its own token): nothing to do here.
- `Authorization: Bearer <jwt>`: must verify and belong to this tenant, else 401 `unauthorized`.
- Otherwise the session cookie: an unsafe request must carry the session's own CSRF token (`csrf.check`, 403
  `csrf_failed`); a live session of this tenant signs the request in; a stale one is ignored, so a browser with
  an old cookie still sees public pages, and protected ones answer 401.
- Admin routes (`admin_routes`) need a staff user of this tenant: 401 without one, 403 `forbidden` for a customer.

The user's id goes into `user_id_var`, so the access log and the labels of jobs enqueued by the view carry it.
"""

from __future__ import annotations

from quart import Request, Response

from kernel import CallNext, Problem, RequestMiddleware, RoutePatterns, Stage, tenant_id_var, user_id_var
from plugins.auth import csrf, sessions
from plugins.auth.principal import Principal, principal_var
from plugins.auth.runtime import Auth
from plugins.auth.tokens import InvalidToken

UNAUTHORIZED_HEADERS = {"WWW-Authenticate": 'Bearer realm="soko"'}


def unauthorized(detail: str = "Sign in first.") -> Problem:
    return Problem(401, "unauthorized", detail, headers=UNAUTHORIZED_HEADERS)


def forbidden() -> Problem:
    return Problem(403, "forbidden", "Your account may not do this.")


class AuthMiddleware(RequestMiddleware):
    stage = Stage.AUTH

    def __init__(self, auth: Auth) -> None:
        self._auth = auth
        self._admin = RoutePatterns(auth.settings.admin_routes)
        self._cookie = auth.session_cookie

    async def __call__(self, request: Request, call_next: CallNext) -> Response:
        tenant_id = tenant_id_var.get()
        if tenant_id is None:
            return await call_next()
        principal = await self._authenticate(request, tenant_id)
        if principal is not None:
            user_id_var.set(principal.user_id)  # the kernel resets it after the access line, which names the user
        if self._admin(request.path):
            if principal is None:
                raise unauthorized()
            if not principal.role.is_staff:
                raise forbidden()
        if principal is None:
            return await call_next()
        token = principal_var.set(principal)
        try:
            return await call_next()
        finally:
            principal_var.reset(token)

    async def _authenticate(self, request: Request, tenant_id: str) -> Principal | None:
        scheme, _, credentials = request.headers.get("Authorization", "").partition(" ")
        if scheme.lower() == "bearer":
            try:
                return self._auth.tokens.verify(credentials.strip(), tenant_id)
            except InvalidToken:
                raise unauthorized("The access token is not valid here: refresh it or sign in again.") from None
        cookie = request.cookies.get(self._cookie)
        if not cookie:
            return None
        csrf.check(self._auth, request, cookie)
        async with self._auth.kernel.tenant_transaction(tenant_id):
            return await sessions.principal_for(cookie, tenant_id)
