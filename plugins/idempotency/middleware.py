"""The IDEMPOTENCY stage, innermost, just outside the view: claim the key, run once, record or release.

Outcomes for a covered route (config/idempotency.yaml `routes`):
- no key: 400 `idempotency_key_missing`; a malformed one: 400 `validation_error`;
- the key free: the view runs; its answer is recorded unless it is a 5xx or a malformed-request refusal
  (400, 413, 415). It is recorded in the view's own transaction (`before_commit`), so
  the business effect and the record commit together or not at all. A view that raised a Problem rolled its
  transaction back, so its answer is recorded on its own (there is no effect to go with). A 5xx, an exception or
  a cancelled request releases the claim (as does a refusal): the retry runs again;
- the key held with another payload: `mismatch_status` `idempotency_key_reused`, nothing runs;
- the key held by a request still running: wait up to `wait_seconds` for it, then its answer (below); if it
  released the key (a 5xx), this request takes the key and runs; if it is still running then, 409
  `idempotency_key_in_progress` with Retry-After;
- the key finished: its status, headers and body again, with `Idempotent-Replayed: true`.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from datetime import timedelta

from quart import Request, Response

from kernel import (
    CallNext,
    Kernel,
    Problem,
    RequestMiddleware,
    RoutePatterns,
    Stage,
    before_commit,
    json_body,
    tenant_id_var,
    user_id_var,
)
from plugins.idempotency import records
from plugins.idempotency.keys import HEADER, fingerprint, parse_key
from plugins.idempotency.settings import IdempotencySettings

log = logging.getLogger("soko.idempotency")

# A request refused as malformed never began (as Stripe): no record, so the corrected retry may reuse its key.
REJECTED = frozenset({400, 413, 415})
# A repeat waiting for the first request looks again after 20 ms, then twice as long each time, up to 200 ms.
FIRST_POLL_SECONDS = 0.02
LAST_POLL_SECONDS = 0.2


def covered_routes(settings: IdempotencySettings) -> dict[str, RoutePatterns]:
    """`{method: patterns}` of the routes that require a key."""
    by_method: dict[str, list[str]] = {}
    for route in settings.routes:
        method, _, pattern = route.partition(" ")
        by_method.setdefault(method, []).append(pattern)
    return {method: RoutePatterns(patterns) for method, patterns in by_method.items()}


class IdempotencyMiddleware(RequestMiddleware):
    stage = Stage.IDEMPOTENCY

    def __init__(self, kernel: Kernel, settings: IdempotencySettings) -> None:
        self._kernel = kernel
        self._settings = settings
        self._covered = covered_routes(settings)
        self._lease = timedelta(seconds=settings.lease_seconds)
        self._retention = timedelta(seconds=settings.retention_seconds)

    async def __call__(self, request: Request, call_next: CallNext) -> Response:
        patterns = self._covered.get(request.method)
        if patterns is None or request.routing_exception is not None or not patterns(request.path):
            return await call_next()  # uncovered, or routed nowhere (404/405): there is no effect to protect
        raw_key = parse_key(request.headers.getlist(HEADER))
        if tenant_id_var.get() is None:  # records are tenant-owned: see docs/idempotency.md
            log.error("idempotency: %s %s is covered but tenancy exempts it", request.method, request.path)
            raise Problem(500, "idempotency_unscoped", "This route is misconfigured: it has no tenant.")
        route = request.url_rule.rule if request.url_rule is not None else request.path
        digest = fingerprint(request.method, route, await request.get_data(), await json_body(request))
        key = records.Key(user_id_var.get() or "", raw_key, digest)
        loop = asyncio.get_running_loop()
        deadline, pause = loop.time() + self._settings.wait_seconds, FIRST_POLL_SECONDS
        while True:
            found = await records.claim(self._kernel, key, self._lease, self._retention)
            if isinstance(found, uuid.UUID):  # free, or the first request failed and let go: this one runs
                return await self._run_once(key, found, call_next)
            if found.fingerprint != key.fingerprint:
                raise Problem(
                    self._settings.mismatch_status,
                    "idempotency_key_reused",
                    "This Idempotency-Key was used with another request; use a new key for a new request.",
                )
            if found.completed:
                return found.replay()
            remaining = deadline - loop.time()
            if remaining <= 0:
                raise Problem(
                    409,
                    "idempotency_key_in_progress",
                    "A request with this Idempotency-Key is still running; retry after a moment.",
                    headers={"Retry-After": str(self._settings.retry_after_seconds)},
                )
            await asyncio.sleep(min(pause, remaining))  # no transaction or connection is held meanwhile
            pause = min(pause * 2, LAST_POLL_SECONDS)

    async def _run_once(self, key: records.Key, claim_id: uuid.UUID, call_next: CallNext) -> Response:
        recorded = False

        async def record_with_effect(response: Response) -> None:
            nonlocal recorded
            if response.status_code in REJECTED:
                return
            await records.record(self._kernel.connection(), key, claim_id, response)
            recorded = True

        before_commit(record_with_effect)
        try:
            response = await call_next()
        except BaseException:  # cancelled (the client hung up) or worse: the retry must run again
            await asyncio.shield(records.release(self._kernel, key, claim_id))
            raise
        if response.status_code >= 500 or response.status_code in REJECTED:
            await records.release(self._kernel, key, claim_id)
        elif not recorded:
            async with self._kernel.tenant_transaction():
                await records.record(self._kernel.connection(), key, claim_id, response)
        return response
