"""Slow work that tells Redis when it starts and ends: a route that sleeps, a job that sleeps, a route that
queries the database, routes that show the peer address and the body size, and a startup that fails when
`SLOWPROBE_FAIL_STARTUP` is set. The tests put this folder
on PYTHONPATH with a dist-info of its own (its entry point), so only their processes see it."""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager

from quart import Blueprint, request
from redis.asyncio import Redis

from kernel import Kernel, current_kernel, hookimpl


def _events(kernel: Kernel) -> tuple[Redis, str]:
    assert kernel.settings.redis_url is not None
    return Redis.from_url(kernel.settings.redis_url.get_secret_value()), f"slowprobe:{kernel.settings.queue_name}"


async def sleep() -> dict[str, float]:
    kernel = current_kernel()
    seconds = float(request.args.get("seconds", "1"))
    redis, key = _events(kernel)
    async with redis:
        await redis.incr(f"{key}:in-flight")
        try:
            await asyncio.sleep(seconds)
        finally:
            await redis.decr(f"{key}:in-flight")
    return {"slept": seconds}


async def database() -> dict[str, int]:
    """One query in the request's tenant transaction."""
    return {"answer": await current_kernel().connection().fetchval("SELECT 1")}


async def peer() -> dict[str, str | None]:
    """The client address the server handed the app (whatever X-Forwarded-For says)."""
    return {"remote_addr": request.remote_addr}


async def echo() -> dict[str, int]:
    """The size of the body the kernel read whole before this view ran."""
    return {"bytes": len(await request.get_data())}


async def enqueue(name: str) -> tuple[dict[str, str], int]:
    await current_kernel().task("slowprobe.work").kiq(name, float(request.args.get("seconds", "1")))
    return {"queued": name}, 202


@hookimpl
def register_blueprints(kernel: Kernel) -> list[Blueprint]:
    blueprint = Blueprint("slowprobe", __name__)
    blueprint.add_url_rule("/slowprobe/sleep", view_func=sleep, methods=["GET"])
    blueprint.add_url_rule("/slowprobe/jobs/<name>", view_func=enqueue, methods=["POST"])
    blueprint.add_url_rule("/slowprobe/db", view_func=database, methods=["GET"])
    blueprint.add_url_rule("/slowprobe/peer", view_func=peer, methods=["GET"])
    blueprint.add_url_rule("/slowprobe/echo", view_func=echo, methods=["POST"])
    return [blueprint]


@hookimpl
def register_tasks(kernel: Kernel) -> dict[str, Callable[..., Awaitable[None]]]:
    async def work(name: str, seconds: float) -> None:
        redis, key = _events(kernel)
        async with redis:
            await redis.rpush(key, f"start:{name}")
            await asyncio.sleep(seconds)
            await redis.rpush(key, f"done:{name}")

    return {"work": work}


@hookimpl
def lifespan(kernel: Kernel) -> AbstractAsyncContextManager[None]:
    return _lifespan()


@asynccontextmanager
async def _lifespan() -> AsyncIterator[None]:
    if os.environ.get("SLOWPROBE_FAIL_STARTUP"):
        raise RuntimeError("slowprobe: startup fails, as asked")
    yield
