"""Work that must commit together with a request's business effect, or not at all.

A middleware (idempotency records the response it replays) registers a callback with `before_commit` while the
request is on its way in; the kernel calls it with the view's response inside the view's tenant transaction, just
before the commit, and only when the view returned a non-5xx response. An exception in a callback rolls the whole
transaction back, so the effect and the callback's writes exist together or not at all.

A view registers work with `after_commit` that must see its writes from outside (a job enqueued for the worker,
which would otherwise race the commit and find nothing): it runs once the transaction has committed, never after
a rollback. The effect is committed by then, so a failing callback is logged, not turned into an error, and the
work must be recoverable without it (a periodic job that finds what was left waiting).
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from contextvars import ContextVar

from quart import Response

log = logging.getLogger("soko.commit")

BeforeCommit = Callable[[Response], Awaitable[None]]
AfterCommit = Callable[[], Awaitable[None]]

_callbacks_var: ContextVar[list[BeforeCommit] | None] = ContextVar("soko_before_commit", default=None)
_after_var: ContextVar[list[AfterCommit] | None] = ContextVar("soko_after_commit", default=None)


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


def after_commit(callback: AfterCommit) -> None:
    """Run `callback()` once this request's tenant transaction has committed (not at all if it rolls back)."""
    callbacks = _after_var.get()
    if callbacks is None:
        callbacks = []
        _after_var.set(callbacks)
    callbacks.append(callback)


async def run_after_commit() -> None:
    """Called by the kernel after the commit: every registered callback, in order; failures are logged."""
    for callback in _after_var.get() or ():
        try:
            await callback()
        except Exception:  # committed already: the work must be recoverable without this callback
            log.exception("after_commit callback failed")


def reset() -> None:
    """Forget the callbacks of the request that just ended (the kernel calls this)."""
    _callbacks_var.set(None)
    _after_var.set(None)
