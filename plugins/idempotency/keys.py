"""The Idempotency-Key header and the request fingerprint: what identifies a retry, and what proves it is one."""

from __future__ import annotations

import hashlib
import json
from typing import Any

from kernel import Problem

HEADER = "Idempotency-Key"
MAX_LENGTH = 255


def parse_key(values: list[str]) -> str:
    """The one key a request carries; the IETF draft's quoted form (`"abc"`) and a bare token both work."""
    if not values:
        raise Problem(400, "idempotency_key_missing", f"This route requires an {HEADER} header (a UUID v4 is ideal).")
    if len(values) > 1:
        raise Problem(400, "validation_error", f"Send one {HEADER} header.")
    key = values[0].strip()
    if len(key) >= 2 and key[0] == key[-1] == '"':
        key = key[1:-1]
    if not key or len(key) > MAX_LENGTH or not all(" " < char <= "~" for char in key):
        raise Problem(
            400, "validation_error", f"The {HEADER} must be 1 to {MAX_LENGTH} printable ASCII characters, no spaces."
        )
    return key


def fingerprint(method: str, route: str, body: bytes, document: Any) -> str:
    """sha256 of the method, the route template and the body: canonical JSON for a JSON body (key order and
    spacing ignored; `document` is the kernel's one parse of it), the bytes as sent for any other."""
    canonical = body
    if document is not None:
        canonical = json.dumps(document, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()
    digest = hashlib.sha256()
    for part in (method.encode(), route.encode(), canonical):
        digest.update(len(part).to_bytes(8, "big") + part)
    return digest.hexdigest()
