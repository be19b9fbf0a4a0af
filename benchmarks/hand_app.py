"""The hand-written app bench_side_by_side.py measures soko against: plain Quart doing the same per-request work.

What a careful engineer would write without a framework, on the same libraries soko uses: a request id (taken from
a valid X-Request-ID or made), one JSON access-log line per request through `logging`, helmet's default headers,
the tenant from the Host (a dict loaded at startup), a fixed-window rate limit in Redis (INCR and EXPIRE in one
round trip) and a 20-row read with asyncpg inside a transaction that sets the tenant for forced row-level security.
The environment is the soko server's: SOKO_DATABASE_URL (the app role) and SOKO_REDIS_URL.
"""

from __future__ import annotations

import json
import logging
import os
import re
import sys
import time
from typing import Any

import asyncpg
from quart import Quart, Response, g, request
from redis.asyncio import Redis

HELMET = {
    "Content-Security-Policy": "default-src 'self';base-uri 'self';font-src 'self' https: data:;"
    "form-action 'self';frame-ancestors 'self';img-src 'self' data:;object-src 'none';script-src 'self';"
    "script-src-attr 'none';style-src 'self' https: 'unsafe-inline';upgrade-insecure-requests",
    "Cross-Origin-Opener-Policy": "same-origin",
    "Cross-Origin-Resource-Policy": "same-origin",
    "Origin-Agent-Cluster": "?1",
    "Referrer-Policy": "no-referrer",
    "Strict-Transport-Security": "max-age=31536000; includeSubDomains",
    "X-Content-Type-Options": "nosniff",
    "X-DNS-Prefetch-Control": "off",
    "X-Download-Options": "noopen",
    "X-Frame-Options": "SAMEORIGIN",
    "X-Permitted-Cross-Domain-Policies": "none",
    "X-XSS-Protection": "0",
}
REQUEST_ID = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")
LIMIT, WINDOW_S = 100_000, 1


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        return json.dumps(
            {
                "ts": self.formatTime(record),
                "level": record.levelname,
                "logger": record.name,
                "msg": record.getMessage(),
            }
            | getattr(record, "fields", {})
        )


def create() -> Quart:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter())
    access = logging.getLogger("hand.access")
    access.addHandler(handler)
    access.setLevel(logging.INFO)
    access.propagate = False
    app = Quart(__name__)
    state: dict[str, Any] = {}

    @app.before_serving
    async def start() -> None:
        state["pool"] = await asyncpg.create_pool(os.environ["SOKO_DATABASE_URL"], min_size=1, max_size=10)
        state["redis"] = Redis.from_url(os.environ["SOKO_REDIS_URL"])
        rows = await state["pool"].fetch("SELECT slug, id::text FROM tenants")
        state["tenants"] = {f"{row['slug']}.localhost": row["id"] for row in rows}

    @app.after_serving
    async def stop() -> None:
        await state["pool"].close()
        await state["redis"].aclose()

    @app.before_request
    async def identify() -> Any:
        g.started = time.perf_counter()
        offered = request.headers.get("x-request-id")
        g.request_id = offered if offered and REQUEST_ID.match(offered) else os.urandom(16).hex()
        if request.path == "/healthz":
            return None
        g.tenant = state["tenants"].get(request.host)
        if g.tenant is None:
            return {"code": "tenant_not_found"}, 404
        return None

    @app.after_request
    async def finish(response: Response) -> Response:
        response.headers.update(HELMET)
        response.headers["X-Request-ID"] = g.request_id
        rule = request.url_rule
        fields = {
            "request_id": g.request_id,
            "tenant_id": g.get("tenant"),
            "method": request.method,
            "route": rule.rule if rule else None,
            "status": response.status_code,
            "latency_ms": round((time.perf_counter() - g.started) * 1000, 2),
        }
        access.info("%s %s %s", request.method, fields["route"], response.status_code, extra={"fields": fields})
        return response

    @app.get("/healthz")
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/bench/trivial")
    async def trivial() -> dict[str, Any]:
        return {"ok": True}

    @app.get("/bench/limited")
    async def limited() -> Any:
        key = f"hand:rl:{g.tenant}:{int(time.time()) // WINDOW_S}"
        async with state["redis"].pipeline(transaction=False) as pipe:
            count, _ = await pipe.incr(key).expire(key, WINDOW_S * 2).execute()
        if count > LIMIT:
            return {"code": "rate_limited"}, 429
        return {"ok": True}, 200, {"RateLimit-Remaining": str(LIMIT - count)}

    @app.get("/bench/items")
    async def items() -> dict[str, Any]:
        async with state["pool"].acquire() as connection, connection.transaction():
            await connection.execute("SELECT set_config('app.current_tenant', $1, true)", g.tenant)
            rows = await connection.fetch("SELECT id, body FROM bench_items ORDER BY id")
        return {"items": [dict(row) for row in rows]}

    return app
