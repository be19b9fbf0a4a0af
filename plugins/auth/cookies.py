"""The staff panel's cookies: the session (HttpOnly, invisible to scripts) and the CSRF token, bound to the
session (`csrf.token_for`), readable by the panel's script, which repeats it in X-CSRF-Token.

Both SameSite=Lax, so other sites' sub-requests do not carry them; outside development and test they are Secure
and named `__Host-...` (`Kernel.cookie_name`), so no sibling subdomain can set them.
"""

from __future__ import annotations

from quart import Response

from plugins.auth import csrf
from plugins.auth.runtime import Auth


def set_login_cookies(auth: Auth, response: Response, session_token: str) -> None:
    common = {"secure": auth.secure_cookies, "samesite": "Lax", "path": "/"}
    max_age = auth.settings.session_ttl_seconds
    response.set_cookie(auth.session_cookie, session_token, max_age=max_age, httponly=True, **common)
    token = csrf.token_for(auth, session_token)
    response.set_cookie(auth.csrf_cookie, token, max_age=max_age, httponly=False, **common)


def clear_login_cookies(auth: Auth, response: Response) -> None:
    for name, httponly in ((auth.session_cookie, True), (auth.csrf_cookie, False)):
        response.delete_cookie(name, path="/", secure=auth.secure_cookies, httponly=httponly, samesite="Lax")
