"""What the OpenAPI document says about limited operations: the 429 answer and the RateLimit fields."""

from __future__ import annotations

from typing import Any

from kernel import problem_responses, rule_as_path
from plugins.ratelimit.matching import PolicyTable

_RETRY_AFTER = {"description": "Whole seconds to wait", "schema": {"type": "integer", "minimum": 1}}
_FIELDS = {
    "RateLimit": {
        "description": 'Remaining quota per policy, e.g. `"auth";r=4;t=60` (draft-ietf-httpapi-ratelimit-headers)',
        "schema": {"type": "string"},
    },
    "RateLimit-Policy": {
        "description": 'The policies that apply, e.g. `"auth";q=5;w=60`',
        "schema": {"type": "string"},
    },
}


def limited_operation(table: PolicyTable, method: str, rule: str) -> dict[str, Any] | None:
    """The 429 response of an operation some policy limits; None for the others.

    A route template (`/payments/<provider>`) is matched as a path with a placeholder for each variable part.
    """
    policies = table.matching(method, rule_as_path(rule))
    if not policies:
        return None
    names = ", ".join(f"`{policy.name}`" for policy in policies)
    limited = f"Rate limited by {names} (`rate_limited`); successful answers carry the fields too"
    responses = problem_responses({429: limited})
    responses["429"]["headers"] = _FIELDS | {"Retry-After": _RETRY_AFTER}
    return {"responses": responses}
