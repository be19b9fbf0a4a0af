"""The plugin's parts for one kernel, built once and shared by its middleware, lifespan and OpenAPI hook."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass

from kernel import Kernel
from plugins.ratelimit.client_ip import ClientAddress
from plugins.ratelimit.keys import CounterKeys
from plugins.ratelimit.matching import PolicyTable
from plugins.ratelimit.middleware import RateLimitMiddleware
from plugins.ratelimit.outage import OutageLog
from plugins.ratelimit.settings import RateLimitSettings
from plugins.ratelimit.window import SlidingWindow


@dataclass(frozen=True)
class RateLimiting:
    table: PolicyTable
    window: SlidingWindow
    middleware: RateLimitMiddleware


def rate_limiting(kernel: Kernel) -> RateLimiting:
    """The kernel's rate limiting, built on first use (by the middleware hook, at app build time)."""
    return kernel.state("ratelimit", _build)


def _build(kernel: Kernel) -> RateLimiting:
    settings = kernel.settings_of("ratelimit", RateLimitSettings)
    table = PolicyTable(settings.policies)
    window = SlidingWindow(settings.redis_timeout_ms)
    keys = CounterKeys(kernel.settings.queue_name, ClientAddress(settings.trusted_proxies))
    middleware = RateLimitMiddleware(table, keys, window, OutageLog(settings.log_every_seconds))
    return RateLimiting(table, window, middleware)


@asynccontextmanager
async def lifespan(kernel: Kernel) -> AsyncIterator[None]:
    if kernel.settings.redis_url is None:
        raise RuntimeError("the ratelimit plugin counts in Redis: set SOKO_REDIS_URL")
    async with rate_limiting(kernel).window.connected(kernel.redis_opened):
        yield
