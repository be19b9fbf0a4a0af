"""The supervisor of `soko serve` and `soko worker`: N child processes, drained on SIGTERM, failing loudly.

hypercorn's and taskiq's own supervisors fall short of what an orchestrator needs: hypercorn's sends SIGTERM to
the other children as soon as the first has exited (one process still draining its requests is cut off) and
returns 0 when a child's startup failed; taskiq's returns at once on SIGTERM and leaves its children to
multiprocessing's exit hook. This one:

- starts the children with SIGINT and SIGTERM ignored (the disposition survives `spawn`), so a signal to the whole
  process group (`docker stop`, systemd, Ctrl-C) does not cut a hypercorn child short; children that want signals
  (taskiq's installs its own handlers) get one SIGTERM from here;
- on SIGTERM or SIGINT sets `stopping` (what hypercorn's children watch) and signals each child once, then waits
  for every child to finish its in-flight work within `grace` seconds (plus a margin for its own shutdown), and
  kills what is left;
- exits non-zero when a child exits on its own (its startup failed, it crashed), stopping the others, or when
  one had to be killed.
"""

from __future__ import annotations

import logging
import os
import signal
import time
from collections.abc import Callable, Mapping
from contextlib import suppress
from multiprocessing import get_context
from multiprocessing.connection import wait
from multiprocessing.process import BaseProcess
from typing import Any

log = logging.getLogger("soko.processes")

# Beyond the grace, what a child may take to close its pools and flush its logs before it is killed.
SHUTDOWN_MARGIN_S = 5.0
_STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)


def supervise(target: Callable[..., None], kwargs: Mapping[str, Any], *, count: int, grace: float, role: str) -> int:
    """Run `count` processes of `target(**kwargs, shutdown_event=<stopping>)` until they end; the exit status."""
    context = get_context("spawn")
    stopping = context.Event()
    previous = {number: signal.signal(number, signal.SIG_IGN) for number in _STOP_SIGNALS}
    children: list[BaseProcess] = []
    try:
        for _ in range(count):
            child = context.Process(target=target, kwargs={**kwargs, "shutdown_event": stopping})
            child.start()
            children.append(child)
    except BaseException:
        for number, handler in previous.items():
            signal.signal(number, handler)
        for child in children:
            child.kill()
        raise
    requested: list[int] = []
    for number in _STOP_SIGNALS:
        signal.signal(number, lambda signum, _frame: requested.append(signum))
    return _watch(children, stopping, requested, grace=grace, role=role)


def _watch(children: list[BaseProcess], stopping: Any, requested: list[int], *, grace: float, role: str) -> int:
    status = 0
    deadline: float | None = None
    running = list(children)
    while running:
        ready = set(wait([child.sentinel for child in running], timeout=0.2))
        for child in [child for child in running if child.sentinel in ready]:
            child.join()
            running.remove(child)
            if deadline is None:  # nobody asked it to stop: its startup failed, or it crashed
                log.error("soko %s: process %s exited with %s; stopping the others", role, child.pid, child.exitcode)
                status = status or child.exitcode or 1
                requested.append(0)
            elif child.exitcode:
                status = status or 1
        if requested and deadline is None:
            deadline = time.monotonic() + grace + SHUTDOWN_MARGIN_S
            stopping.set()
            for child in running:
                _signal(child, signal.SIGTERM)
            log.info("soko %s: stopping; in-flight work has %ss", role, grace)
        if deadline is not None and time.monotonic() > deadline and running:
            log.error("soko %s: %d process(es) still running after the grace; killing them", role, len(running))
            for child in running:
                child.kill()
            status = status or 1
            deadline = float("inf")
    return status


def _signal(child: BaseProcess, number: int) -> None:
    if child.pid is not None:
        with suppress(ProcessLookupError):
            os.kill(child.pid, number)
