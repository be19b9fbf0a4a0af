"""The ratelimit plugin's table of contents: every hook it implements, each handing off to a module of its own."""

from __future__ import annotations

from collections.abc import Mapping
from contextlib import AbstractAsyncContextManager
from typing import Any

from kernel import Kernel, RequestMiddleware, hookimpl
from plugins.ratelimit import runtime
from plugins.ratelimit.openapi import limited_operation
from plugins.ratelimit.settings import RateLimitSettings


@hookimpl
def settings_model() -> type[RateLimitSettings]:
    return RateLimitSettings


@hookimpl
def register_middleware(kernel: Kernel) -> list[RequestMiddleware]:
    return [runtime.rate_limiting(kernel).middleware]


@hookimpl
def lifespan(kernel: Kernel) -> AbstractAsyncContextManager[None]:
    return runtime.lifespan(kernel)


@hookimpl
def openapi_operation(kernel: Kernel, method: str, rule: str) -> Mapping[str, Any] | None:
    return limited_operation(runtime.rate_limiting(kernel).table, method, rule)
