"""Work that must commit together with a request's business effect, or not at all.

A middleware (idempotency records the response it replays) registers a callback with `before_commit` while the
request is on its way in; the kernel calls it with the view's response inside the view's tenant transaction, just
before the commit, and only when the view returned a non-5xx response. An exception in a callback rolls the whole
transaction back, so the effect and the callback's writes exist together or not at all.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from contextvars import ContextVar

from quart import Response

BeforeCommit = Callable[[Response], Awaitable[None]]

_callbacks_var: ContextVar[list[BeforeCommit] | None] = ContextVar("soko_before_commit", default=None)


def before_commit(callback: BeforeCommit) -> None:
    """Run `callback(response)` in this request's tenant transaction just before it commits."""
    callbacks = _callbacks_var.get()
    if callbacks is None:
        callbacks = []
        _callbacks_var.set(callbacks)
    callbacks.append(callback)


async def run_before_commit(response: Response) -> None:
    """Called by the kernel: every registered callback, in registration order."""
    for callback in _callbacks_var.get() or ():
        await callback(response)


def reset() -> None:
    """Forget the callbacks of the request that just ended (the kernel calls this)."""
    _callbacks_var.set(None)
