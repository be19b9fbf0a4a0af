"""Double-submit CSRF check for cookie-authenticated requests (the staff panel's session).

A browser sends cookies with cross-site requests, but a page on another site can neither read our `soko_csrf`
cookie nor (without our CORS consent) set our header; so an unsafe request that carries the session cookie must
repeat the cookie's value in `X-CSRF-Token`. A request with a bearer token is authenticated by a header that no
other site can make a browser send, so it needs no token.
"""

from __future__ import annotations

import hmac

from quart import Request

from kernel import Problem
from plugins.security.settings import CsrfSettings

SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS", "TRACE"})


class CsrfCheck:
    def __init__(self, settings: CsrfSettings) -> None:
        self._settings = settings

    def __call__(self, request: Request) -> None:
        """Raise 403 `csrf_failed` for a cookie-authenticated unsafe request without the matching token."""
        if request.method in SAFE_METHODS or self._settings.session_cookie not in request.cookies:
            return
        scheme, _, _ = request.headers.get("Authorization", "").partition(" ")
        if scheme.lower() == "bearer":
            return
        cookie = request.cookies.get(self._settings.token_cookie, "")
        header = request.headers.get(self._settings.header, "")
        if not cookie or not hmac.compare_digest(header.encode(), cookie.encode()):
            raise Problem(
                403,
                "csrf_failed",
                f"Send the {self._settings.header} header with the value of the {self._settings.token_cookie} cookie.",
            )
