"""soko's public API for plugin authors. Everything not exported here is private to the kernel."""

import pluggy
from quart import current_app

from kernel.kernel import Kernel
from kernel.pipeline import CallNext, RequestMiddleware, Stage
from kernel.problems import Problem

hookimpl = pluggy.HookimplMarker("soko")


def current_kernel() -> Kernel:
    """The kernel of the app serving the current request."""
    kernel: Kernel = current_app.extensions["soko"]
    return kernel


__all__ = [
    "CallNext",
    "Kernel",
    "Problem",
    "RequestMiddleware",
    "Stage",
    "current_kernel",
    "hookimpl",
]
