"""The request pipeline: middleware that plugins contribute, ordered by the stage each one declares.

A middleware wraps everything inside it: it gets the request and `call_next`, and returns a response. The kernel
turns any exception a layer raises into a problem response at that layer's boundary, so every layer outside it
always sees a response (security headers land on errors too). The view itself runs innermost, inside the tenant's
database transaction when a tenant is bound.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from enum import IntEnum
from typing import ClassVar

from quart import Request, Response


class Stage(IntEnum):
    """Where a middleware stands, outermost first. The kernel's request id and access log wrap them all."""

    SECURITY = 20
    TENANCY = 30
    RATE_LIMIT = 40
    AUTH = 50
    IDEMPOTENCY = 60


# Stages whose job only one plugin can do: two tenant resolvers would disagree about who the request is for.
EXCLUSIVE_STAGES = frozenset({Stage.TENANCY, Stage.AUTH, Stage.IDEMPOTENCY})

CallNext = Callable[[], Awaitable[Response]]


class RequestMiddleware(ABC):
    """One layer of the pipeline. Subclasses set `stage` and implement `__call__`."""

    stage: ClassVar[Stage]

    @abstractmethod
    async def __call__(self, request: Request, call_next: CallNext) -> Response:
        """Return `await call_next()` (possibly changed), or a response of your own to stop here."""


@dataclass(frozen=True)
class PlacedMiddleware:
    """A middleware with the plugin that contributed it, as `soko plugins` shows it."""

    plugin: str
    middleware: RequestMiddleware

    @property
    def stage(self) -> Stage:
        return self.middleware.stage


def order_middleware(placed: Sequence[PlacedMiddleware]) -> tuple[list[PlacedMiddleware], list[str]]:
    """Sort by stage (plugin order breaks ties) and list every conflict instead of guessing."""
    problems = []
    for item in placed:
        if not isinstance(getattr(item.middleware, "stage", None), Stage):
            problems.append(f"plugin {item.plugin!r}: middleware {item.middleware!r} declares no valid `stage`")
    valid = [item for item in placed if isinstance(getattr(item.middleware, "stage", None), Stage)]
    for stage in EXCLUSIVE_STAGES:
        owners = sorted({item.plugin for item in valid if item.stage is stage})
        if len(owners) > 1:
            problems.append(f"stage {stage.name} can have one middleware, but {', '.join(owners)} all claim it")
    return sorted(valid, key=lambda item: item.stage), problems
