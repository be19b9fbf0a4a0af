"""What the OpenAPI document says about covered operations: the required header and the answers it adds."""

from __future__ import annotations

from typing import Any

from kernel import RoutePatterns, problem_responses, rule_as_path
from plugins.idempotency.keys import HEADER, MAX_LENGTH


def covered_operation(covered: dict[str, RoutePatterns], mismatch_status: int, method: str, rule: str) -> Any:
    """The Idempotency-Key parameter and its problem answers for a covered operation; None for the others."""
    patterns = covered.get(method)
    if patterns is None or not patterns(rule_as_path(rule)):
        return None
    conflicts = "`idempotency_key_in_progress` (with Retry-After)"
    reused = "`idempotency_key_reused`: the key was used with another payload"
    problems = {400: f"`idempotency_key_missing`, or a malformed {HEADER}", 409: conflicts}
    if mismatch_status == 409:
        problems[409] += " or `idempotency_key_reused`"
    else:
        problems[mismatch_status] = reused
    responses = problem_responses(problems)
    return {
        "parameters": [
            {
                "name": HEADER,
                "in": "header",
                "required": True,
                "description": "Unique per intended operation (a UUID v4); a retry with the same key and payload "
                "is answered with the first answer and `Idempotent-Replayed: true`.",
                "schema": {"type": "string", "minLength": 1, "maxLength": MAX_LENGTH},
            }
        ],
        "responses": responses,
    }
