"""The RATE_LIMIT stage: count the request against every matching policy, refuse it when one is exhausted.

It runs after tenancy, so the tenant (the keys' hash tag, and a key kind of its own) is known. Routes no policy
names pass straight through: no Redis, no body read.
"""

from __future__ import annotations

from quart import Request, Response

from kernel import CallNext, Problem, RequestMiddleware, Stage, count_ratelimit_refusal
from plugins.ratelimit.headers import rate_limit_headers, retry_after, violated
from plugins.ratelimit.keys import CounterKeys
from plugins.ratelimit.matching import PolicyTable
from plugins.ratelimit.outage import OutageLog
from plugins.ratelimit.settings import Policy
from plugins.ratelimit.window import LimiterUnavailable, SlidingWindow


class RateLimitMiddleware(RequestMiddleware):
    stage = Stage.RATE_LIMIT

    def __init__(self, table: PolicyTable, keys: CounterKeys, window: SlidingWindow, outage: OutageLog) -> None:
        self._table = table
        self._keys = keys
        self._window = window
        self._outage = outage

    async def __call__(self, request: Request, call_next: CallNext) -> Response:
        policies = self._table.matching(request.method, request.path)
        if not policies:
            return await call_next()
        counters = await self._keys.for_request(request, policies)
        if not counters:
            return await call_next()
        try:
            outcome = await self._window.hit(counters)
        except LimiterUnavailable as error:
            return await self._without_redis(policies, str(error), call_next)
        self._outage.succeeded()
        headers = rate_limit_headers(outcome)
        if not outcome.admitted:
            for policy in violated(outcome):
                count_ratelimit_refusal(policy)
            raise Problem(
                429,
                "rate_limited",
                "Too many requests: wait for the number of seconds in Retry-After.",
                headers=headers | {"Retry-After": retry_after(outcome)},
                violated_policies=violated(outcome),
            )
        response = await call_next()
        response.headers.update(headers)
        return response

    async def _without_redis(self, policies: list[Policy], reason: str, call_next: CallNext) -> Response:
        closed = sorted(policy.name for policy in policies if policy.failure == "closed")
        self._outage.failed(reason, f"closed ({', '.join(closed)})" if closed else "open")
        if closed:
            raise Problem(
                503,
                "service_unavailable",
                "This action is briefly unavailable; try again shortly.",
                headers={"Retry-After": "1"},
            )
        return await call_next()
