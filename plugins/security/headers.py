"""The headers every response gets, errors included, computed once from the settings."""

from __future__ import annotations

from quart import Response
from werkzeug.datastructures import Headers

from kernel import RoutePatterns
from plugins.security.csp import CspPolicies
from plugins.security.settings import SecuritySettings

# Headers that would tell an attacker what runs here (hypercorn's own Server header is off in `soko serve`).
_REVEALING = ("Server", "X-Powered-By")


class SecurityHeaders:
    def __init__(self, settings: SecuritySettings) -> None:
        hsts = f"max-age={settings.hsts_max_age_seconds}; includeSubDomains"
        self._fixed = {
            "Strict-Transport-Security": f"{hsts}; preload" if settings.hsts_preload else hsts,
            "X-Frame-Options": "DENY",
            "X-Content-Type-Options": "nosniff",
            "Referrer-Policy": settings.referrer_policy,
            "Cross-Origin-Opener-Policy": settings.cross_origin_opener_policy,
            "Cross-Origin-Resource-Policy": settings.cross_origin_resource_policy,
            "Permissions-Policy": ", ".join(
                f"{feature}=({' '.join(allowed)})" for feature, allowed in settings.permissions_policy.items()
            ),
        }
        self._fixed_pairs = list(Headers(self._fixed).items())  # werkzeug checks each value once, here
        self._ours = frozenset(name.lower() for name in [*self._fixed, "Content-Security-Policy", *_REVEALING])
        self._csp = CspPolicies(settings.content_security_policy, settings.csp_routes)
        self._no_store = RoutePatterns(settings.no_store_routes)

    def apply(self, response: Response, path: str, nonce: str) -> None:
        """Set every header; appended in one go when the response has none of them yet (the usual case), since
        werkzeug's `update` scans the whole header list once per name, and its `extend` checks each value again
        on every response: the pairs checked at startup go straight onto its list of pairs."""
        headers = response.headers
        csp = self._csp.for_path(path).render(nonce)
        present = {name.lower() for name, _ in headers._list}
        if self._ours.isdisjoint(present):
            headers._list.extend(self._fixed_pairs)
            headers._list.append(("Content-Security-Policy", csp))
        else:
            for name in _REVEALING:
                headers.pop(name, None)
            headers.update(self._fixed)
            headers["Content-Security-Policy"] = csp
        if self._no_store(path):
            if "cache-control" in present:
                headers["Cache-Control"] = "no-store"
            else:
                headers._list.append(("Cache-Control", "no-store"))
