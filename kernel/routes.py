"""Route patterns as settings write them: a path glob (`/payments/*`), where `*` matches anything, `/` included.

One matcher for every plugin that applies a policy to some routes (rate limits, cache rules, CSP exceptions), so
they all read patterns the same way. Patterns are compiled once into one regex and matched once per request.
"""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Iterable


def check_route_pattern(pattern: str) -> str:
    """A settings validator's check: a pattern is a path, so it starts with `/`."""
    if not pattern.startswith("/"):
        raise ValueError(f"route pattern {pattern!r} must start with /")
    return pattern


_CONVERTER = re.compile(r"<[^>]+>")


def rule_as_path(rule: str) -> str:
    """A route template (`/carts/<cart_id>`) as a path patterns can match: each variable part a placeholder."""
    return _CONVERTER.sub("_", rule)


class RoutePatterns:
    """Whether a request path matches any of some glob patterns."""

    def __init__(self, patterns: Iterable[str]) -> None:
        compiled = "|".join(fnmatch.translate(pattern) for pattern in patterns)
        self._match = re.compile(compiled).match if compiled else None

    def __call__(self, path: str) -> bool:
        return self._match is not None and self._match(path) is not None
