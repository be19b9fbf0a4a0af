"""Which policies apply to a request, decided from its method and path alone (no I/O, no body).

Patterns are grouped by method when the plugin is built, so a request whose method no policy names (every GET
with the default policies) is settled by one dict lookup.
"""

from __future__ import annotations

from collections import defaultdict

from kernel import RoutePatterns
from plugins.ratelimit.settings import Policy

_SAME_AS = {"HEAD": "GET"}  # Quart answers HEAD with the GET view, so it counts against the GET route's policy

Paths = dict[str, list[str]]  # policy name -> path globs


class PolicyTable:
    def __init__(self, policies: list[Policy]) -> None:
        self._named = {policy.name: policy for policy in policies}
        by_method: defaultdict[str, defaultdict[str, list[str]]] = defaultdict(lambda: defaultdict(list))
        for policy in policies:
            for route in policy.routes:
                method, _, path = route.partition(" ")
                by_method[method][policy.name].append(path)
        any_method = by_method.pop("*", defaultdict(list))
        for paths in by_method.values():
            for name, globs in any_method.items():
                paths[name].extend(globs)
        self._by_method = {method: self._compile(paths) for method, paths in by_method.items()}
        self._any_method = self._compile(any_method)

    def matching(self, method: str, path: str) -> list[Policy]:
        candidates = self._by_method.get(_SAME_AS.get(method, method), self._any_method)
        return [policy for policy, patterns in candidates if patterns(path)]

    def _compile(self, paths: Paths) -> list[tuple[Policy, RoutePatterns]]:
        return [(self._named[name], RoutePatterns(globs)) for name, globs in paths.items()]
