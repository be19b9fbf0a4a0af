"""What the OpenAPI document says about covered operations: the required header and the answers it adds."""

from __future__ import annotations

import re
from typing import Any

from kernel import RoutePatterns
from plugins.idempotency.keys import HEADER, MAX_LENGTH

_CONVERTER = re.compile(r"<[^>]+>")
_PROBLEM = {"application/problem+json": {"schema": {"$ref": "#/components/schemas/Problem"}}}


def covered_operation(covered: dict[str, RoutePatterns], mismatch_status: int, method: str, rule: str) -> Any:
    """The Idempotency-Key parameter and its problem answers for a covered operation; None for the others."""
    patterns = covered.get(method)
    if patterns is None or not patterns(_CONVERTER.sub("_", rule)):
        return None
    conflicts = "`idempotency_key_in_progress` (with Retry-After)"
    responses = {"409": {"description": f"{conflicts}", "content": _PROBLEM}}
    reused = {"description": "`idempotency_key_reused`: the key was used with another payload", "content": _PROBLEM}
    if mismatch_status == 409:
        responses["409"]["description"] += " or `idempotency_key_reused`"
    else:
        responses[str(mismatch_status)] = reused
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
