"""`/healthz` says the process is alive; `/readyz` says it can do its job, and if not, what is missing."""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from typing import Any

import asyncpg
from pydantic import BaseModel
from quart import Quart, current_app
from quart_schema import document_response, validate_response
from redis.exceptions import RedisError

from kernel import migrations
from kernel.kernel import Kernel
from kernel.problems import Problem
from kernel.queue import StreamBroker

CHECK_TIMEOUT_S = 2.0


class Health(BaseModel):
    status: str


ALIVE = {"status": "ok"}


class Readiness(BaseModel):
    status: str
    checks: dict[str, str]


def install_health(app: Quart) -> None:
    """Routes on the app itself, not a blueprint: probes call them often, and blueprints cost per request."""
    app.add_url_rule("/healthz", "healthz", healthz, methods=["GET"])
    app.add_url_rule("/readyz", "readyz", readyz, methods=["GET"])


@document_response(Health)
async def healthz() -> dict[str, str]:
    """The process is alive."""
    return ALIVE  # documented, not validated: probes call this often and the answer never changes


@validate_response(Readiness)
async def readyz() -> Readiness:
    """The database, Redis and migrations are ready; else 503 naming what is not."""
    kernel: Kernel = current_app.extensions["soko"]
    checks = {
        "database": await _check(_database(kernel)),
        "redis": await _check(_redis(kernel)),
        "migrations": await _check(_migrations(kernel)),
    }
    failing = sorted(name for name, result in checks.items() if result != "ok")
    if failing:
        raise Problem(503, "service_unavailable", f"not ready: {', '.join(failing)}", checks=checks)
    return Readiness(status="ready", checks=checks)


async def _check(probe: Coroutine[Any, Any, str]) -> str:
    """Run one readiness probe within a bounded time; its failure is a reason, never a crash."""
    try:
        async with asyncio.timeout(CHECK_TIMEOUT_S):
            return await probe
    except TimeoutError:
        return "timed out"
    except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError, RedisError) as error:
        return f"unavailable ({type(error).__name__})"


async def _database(kernel: Kernel) -> str:
    if kernel.engine is None:
        return "not configured (SOKO_DATABASE_URL)"
    async with kernel.engine.pool.acquire() as connection:
        await connection.fetchval("SELECT 1")
    return "ok"


async def _redis(kernel: Kernel) -> str:
    if not isinstance(kernel.broker, StreamBroker):
        return "not configured (SOKO_REDIS_URL)"
    await kernel.broker.redis.ping()  # the queue's own client: one server, every Cluster node, or the primary
    return "ok"


async def _migrations(kernel: Kernel) -> str:
    if kernel.engine is None:
        return "not configured (SOKO_DATABASE_URL)"
    waiting = await migrations.pending(kernel, kernel.engine)
    return "ok" if not waiting else f"pending: {', '.join(waiting)}"
