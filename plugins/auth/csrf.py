"""The staff panel's CSRF token, bound to its session: an HMAC of the session cookie's token.

Every store lives under one base domain, so a page on another store's subdomain can set a parent-domain cookie
("cookie tossing") and send a matching header: a double-submit check alone (header equals cookie) then passes.
A token that is the HMAC of the session's own token cannot be made without that HttpOnly token and the server's
key, so a tossed cookie matches nothing. Checked without the database, before the session is looked up.
"""

from __future__ import annotations

import base64
import hashlib
import hmac

from quart import Request

from kernel import Problem
from plugins.auth.runtime import Auth

SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS", "TRACE"})


def token_for(auth: Auth, session_token: str) -> str:
    """The CSRF token of the session whose cookie holds `session_token`."""
    digest = hmac.new(auth.keyring.csrf_key, session_token.encode(), hashlib.sha256).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


def check(auth: Auth, request: Request, session_token: str) -> None:
    """Raise 403 `csrf_failed` for an unsafe request whose header is not its session's token."""
    if request.method in SAFE_METHODS:
        return
    sent = request.headers.get(auth.settings.csrf_header, "")
    if not hmac.compare_digest(sent.encode(), token_for(auth, session_token).encode()):
        raise Problem(
            403,
            "csrf_failed",
            f"Send the {auth.settings.csrf_header} header with the value of the {auth.csrf_cookie} cookie "
            "this session's sign-in set.",
        )
