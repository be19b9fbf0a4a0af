"""Who may run the shop's admin routes: a placeholder that denies by default until the auth plugin's staff check.

Until then the platform operator's token (`plugins.commerce.admin_token`, `Authorization: Bearer ...`) is the
only way in; with no token configured, every admin request is refused with 403.
"""

from __future__ import annotations

import hmac

from quart import request

from kernel import Problem
from plugins.commerce.settings import CommerceSettings


def require_staff(settings: CommerceSettings) -> None:
    expected = settings.admin_token
    if expected is None:
        raise Problem(403, "forbidden", "Admin routes are switched off: no staff check is configured.")
    scheme, _, token = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not hmac.compare_digest(token.encode(), expected.get_secret_value().encode()):
        raise Problem(401, "unauthorized", "Send the admin token as `Authorization: Bearer <token>`.")
