"""The security requirements auth adds to the OpenAPI document: who may call which operation."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from kernel import RoutePatterns, problem_responses

SIGNED_IN = frozenset({"/auth/me", "/auth/logout"})
NOT_SIGNED_IN = "`unauthorized`: not signed in, or the credentials are not valid for this store"
NOT_STAFF = "`forbidden`: signed in, but not as staff with the needed role"
STAFF_ONLY = problem_responses({401: NOT_SIGNED_IN, 403: NOT_STAFF})


def security_for(admin_routes: RoutePatterns, method: str, rule: str) -> Mapping[str, Any] | None:
    """A bearer token or the session cookie (with the CSRF header on unsafe methods) on protected operations."""
    admin = admin_routes(rule)
    if rule not in SIGNED_IN and not admin:
        return None
    cookie = {"sessionCookie": []} if method in {"GET", "HEAD"} else {"sessionCookie": [], "csrfHeader": []}
    responses = problem_responses({401: NOT_SIGNED_IN})
    if rule == "/auth/logout":
        responses["204"] = {"description": "Signed out: the session ended, or the refresh-token family revoked"}
    if admin:
        responses |= problem_responses({403: NOT_STAFF})
    return {"security": [{"bearerAuth": []}, cookie], "responses": responses}
