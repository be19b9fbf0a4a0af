"""Request bodies: read once, whole and in time, before anything else runs; JSON parsed once, within bounds.

The kernel reads every body before the pipeline (`SokoApp.full_dispatch_request`), so no middleware or view holds
a database connection while a slow client trickles its body in: a body still incomplete after `body_timeout`
seconds is a 408 `request_timeout`, one larger than its route's limit a 413. Parsing happens once per request, for
the views (quart-schema calls `request.get_json`) and for middleware alike (`json_body`), and refuses with 400
`validation_error` what the standard library would turn into a 500: nesting deeper than `max_json_depth` (the
parser recurses, so `[[[...]]]` a thousand deep is a RecursionError) and lone UTF-16 surrogates (`"\\udc00"`
parses into a str that cannot be encoded, so it fails wherever it is hashed, logged or stored).
"""

from __future__ import annotations

import json
import re
from typing import Any

from quart import Request

from kernel.problems import Problem

_STRING = re.compile(rb'"(?:[^"\\]|\\.)*"', re.DOTALL)
_BRACKET = re.compile(rb"[\[\]{}]")
_SURROGATE = re.compile("[\ud800-\udfff]")
_OPENING = frozenset(b"[{")


def too_deep(data: bytes, limit: int) -> bool:
    """Whether `data` nests arrays and objects deeper than `limit`, counted outside strings, without parsing it."""
    if data.count(b"[") + data.count(b"{") <= limit:
        return False
    depth = 0
    for bracket in _BRACKET.finditer(_STRING.sub(b'""', data)):
        if bracket.group()[0] in _OPENING:
            depth += 1
            if depth > limit:
                return True
        else:
            depth -= 1
    return False


def parse_json(data: bytes, max_depth: int) -> Any:
    """The JSON value of `data`; a 400 `validation_error` Problem for anything that is not JSON soko can use."""
    if too_deep(data, max_depth):
        raise Problem(400, "validation_error", f"The request body nests deeper than {max_depth} levels.")
    try:
        value = json.loads(data.decode("utf-8"))
    except UnicodeDecodeError:
        raise Problem(400, "validation_error", "The request body is not valid UTF-8.") from None
    except (ValueError, RecursionError):
        raise Problem(400, "validation_error", "The request body is not valid JSON.") from None
    if b"\\u" in data and _has_surrogate(value):
        raise Problem(400, "validation_error", "The request body holds an unpaired UTF-16 surrogate (\\ud800-\\udfff).")
    return value


def _has_surrogate(value: Any) -> bool:
    """Whether a parsed value holds a lone surrogate in any string, key or value (its depth is bounded already)."""
    if isinstance(value, str):
        return _SURROGATE.search(value) is not None
    if isinstance(value, dict):
        return any(_has_surrogate(key) or _has_surrogate(item) for key, item in value.items())
    if isinstance(value, list):
        return any(_has_surrogate(item) for item in value)
    return False


async def json_body(request: Request) -> Any:
    """The request's JSON body, parsed once for the view and every middleware; None when it declares none.

    A body sent as `application/json` that is malformed, too deep or not UTF-8 is a 400 Problem here, before a
    middleware counts it or claims a key for it: the view would refuse it anyway.
    """
    if not request.is_json:
        return None
    return await request.get_json()
