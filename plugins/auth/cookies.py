"""The staff panel's cookies: the session (HttpOnly, invisible to scripts) and the CSRF token (readable by the
panel's script, which repeats it in X-CSRF-Token; plugins.security checks the two match).

Both SameSite=Lax, so other sites' sub-requests do not carry them, and Secure outside development and test.
"""

from __future__ import annotations

from quart import Response

from plugins.auth import hashing
from plugins.auth.runtime import Auth


def set_login_cookies(auth: Auth, response: Response, session_token: str) -> None:
    common = {"secure": auth.secure_cookies, "samesite": "Lax", "path": "/"}
    max_age = auth.settings.session_ttl_seconds
    response.set_cookie(auth.settings.session_cookie, session_token, max_age=max_age, httponly=True, **common)
    response.set_cookie(auth.settings.csrf_cookie, hashing.new_token(), max_age=max_age, httponly=False, **common)


def clear_login_cookies(auth: Auth, response: Response) -> None:
    for name, httponly in ((auth.settings.session_cookie, True), (auth.settings.csrf_cookie, False)):
        response.delete_cookie(name, path="/", secure=auth.secure_cookies, httponly=httponly, samesite="Lax")
