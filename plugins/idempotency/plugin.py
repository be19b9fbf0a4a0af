"""The idempotency plugin's table of contents: every hook it implements, each handing off to a module of its own."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from contextlib import AbstractAsyncContextManager
from typing import Any

from kernel import Kernel, RequestMiddleware, hookimpl
from plugins.idempotency import purge
from plugins.idempotency.middleware import IdempotencyMiddleware, covered_routes
from plugins.idempotency.openapi import covered_operation
from plugins.idempotency.settings import IdempotencySettings

requires = ["tenancy"]


@hookimpl
def settings_model() -> type[IdempotencySettings]:
    return IdempotencySettings


@hookimpl
def register_middleware(kernel: Kernel) -> list[RequestMiddleware]:
    return [IdempotencyMiddleware(kernel, kernel.settings_of("idempotency", IdempotencySettings))]


@hookimpl
def piccolo_app() -> str:
    return "plugins.idempotency.piccolo_app"


@hookimpl
def register_tasks(kernel: Kernel) -> Mapping[str, Callable[..., Awaitable[Any]]]:
    return {"purge": purge.purge_task(kernel)}


@hookimpl
def lifespan(kernel: Kernel) -> AbstractAsyncContextManager[None]:
    return purge.lifespan(kernel)


@hookimpl
def openapi_operation(kernel: Kernel, method: str, rule: str) -> Mapping[str, Any] | None:
    settings = kernel.settings_of("idempotency", IdempotencySettings)
    return covered_operation(covered_routes(settings), settings.mismatch_status, method, rule)
