"""CSRF checks for cookie-authenticated requests (the staff panel's session), in two layers.

- Origin: an unsafe request carrying the session cookie from a browser says where it comes from; only the store's
  own origins may make changes with its cookies (`Cors.same_store`: the request's own origin, a panel origin, a
  storefront of the store the Host names). Another store's page, on a sibling subdomain of the same site, is
  refused even though SameSite lets its requests carry our cookies.
- Double submit: the request must repeat the CSRF cookie's value in `X-CSRF-Token`. The auth plugin binds that
  token to the session (an HMAC of the session's token), so a cookie tossed from a sibling subdomain does not
  pass there; outside development and test the cookies are `__Host-` ones, which a sibling cannot set at all.

A request with a bearer token is authenticated by a header that no other site can make a browser send, so it
needs neither.
"""

from __future__ import annotations

import hmac

from quart import Request

from kernel import Kernel, Problem
from plugins.security.cors import Cors
from plugins.security.settings import CsrfSettings

SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS", "TRACE"})


class CsrfCheck:
    def __init__(self, settings: CsrfSettings, kernel: Kernel, cors: Cors) -> None:
        self._settings = settings
        self._session_cookie = kernel.cookie_name(settings.session_cookie)
        self._token_cookie = kernel.cookie_name(settings.token_cookie)
        self._cors = cors

    async def __call__(self, request: Request) -> None:
        """Raise 403 `csrf_failed` for a cookie-authenticated unsafe request from another origin or without the
        matching token."""
        if request.method in SAFE_METHODS or self._session_cookie not in request.cookies:
            return
        scheme, _, _ = request.headers.get("Authorization", "").partition(" ")
        if scheme.lower() == "bearer":
            return
        origin = request.headers.get("Origin")
        if origin is not None and not await self._cors.same_store(request, origin):
            raise Problem(403, "csrf_failed", "This origin may not make changes here with this store's cookies.")
        cookie = request.cookies.get(self._token_cookie, "")
        header = request.headers.get(self._settings.header, "")
        if not cookie or not hmac.compare_digest(header.encode(), cookie.encode()):
            raise Problem(
                403,
                "csrf_failed",
                f"Send the {self._settings.header} header with the value of the {self._token_cookie} cookie.",
            )
