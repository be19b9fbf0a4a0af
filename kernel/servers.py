"""The ASGI servers `soko serve` can run (the `server` setting), each as one process of soko's supervisor.

- `hypercorn` (the default): pure Python, h11.
- `uvicorn`: uvicorn with uvloop and httptools (the `fast` extra), about half the CPU per request
  (docs/operations.md has the figures).

Both get the same treatment, so every guarantee of `soko serve` holds on either: the listening socket is bound
once by the supervisor and shared by every process; no access log of the server's own (soko writes one JSON line
per request) and its errors through soko's masked JSON logging; no `server` header; client addresses are the TCP
peer's (no X-Forwarded-For rewriting here: plugins.ratelimit believes it only from `trusted_proxies`); idle
keep-alive connections are closed after `KEEP_ALIVE_S`; when the supervisor sets `stopping` (on its SIGTERM), the
process stops accepting, answers what is in flight within `shutdown_grace`, runs the app's shutdown (pools
closed, access log flushed) and exits 0; a process whose app startup failed exits non-zero.

granian (the issue's other candidate, measured: behind uvicorn on two of three routes) binds and supervises its
processes itself, so it could not run under this supervisor and keep its drain and exit-status guarantees, and it
always sends a `server` header; it is not offered (docs/operations.md).
"""

from __future__ import annotations

import asyncio
import logging
import socket
import sys
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from typing import Any

APP = "kernel.asgi:app"
KEEP_ALIVE_S = 5  # hypercorn's default, kept on both servers
STOP_POLL_S = 0.1
STARTUP_FAILED = 3  # uvicorn's own exit status for a failed startup


def prepare(name: str, bind: str, grace: float) -> tuple[Callable[..., None], Mapping[str, Any]]:
    """The process target and its arguments for `name`, with the socket bound here, before any process starts."""
    if name == "uvicorn":
        return _uvicorn_process, {"bind": bind, "grace": grace, "sock": _bound(bind)}
    from hypercorn.asyncio.run import asyncio_worker
    from hypercorn.config import Config

    config = Config()
    config.application_path = APP
    config.bind = [bind]
    config.graceful_timeout = grace
    config.keep_alive_timeout = KEEP_ALIVE_S
    config.accesslog = None  # soko writes its own access log, one JSON line per request
    config.errorlog = logging.getLogger("hypercorn.error")  # through our JSON handler, so it is masked too
    config.include_server_header = False
    return asyncio_worker, {"config": config, "sockets": config.create_sockets()}


def _bound(bind: str) -> socket.socket:
    """A listening TCP socket for `host:port`, as hypercorn binds one (SO_REUSEADDR, non-blocking, shared)."""
    host, _, port = bind.rpartition(":")
    host = host.strip("[]")
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, int(port)))
    sock.listen(2048)
    sock.set_inheritable(True)
    return sock


def _uvicorn_process(bind: str, grace: float, sock: socket.socket, shutdown_event: Any) -> None:
    """One uvicorn server on the shared socket; exits non-zero when the app's startup failed."""
    import uvicorn

    server_class = _supervised_server_class()
    host, _, port = bind.rpartition(":")
    config = uvicorn.Config(
        APP,
        host=host,
        port=int(port),
        loop="uvloop",
        http="httptools",
        ws="none",
        lifespan="on",
        log_config=None,  # soko's JSON logging, set up by kernel.asgi
        access_log=False,
        proxy_headers=False,
        server_header=False,
        timeout_keep_alive=KEEP_ALIVE_S,
        timeout_graceful_shutdown=int(grace) or 1,
    )
    server = server_class(config)

    async def serve() -> None:
        watcher = asyncio.create_task(_watch(shutdown_event, server))
        try:
            await server.serve(sockets=[sock])
        finally:
            watcher.cancel()

    from uvicorn._compat import asyncio_run

    asyncio_run(serve(), loop_factory=config.get_loop_factory())
    if not server.started:
        sys.exit(STARTUP_FAILED)


def _supervised_server_class() -> type:
    import uvicorn

    class SupervisedServer(uvicorn.Server):  # type: ignore[misc]
        """Leaves SIGTERM and SIGINT ignored, as the supervisor started this process: a signal to the whole group
        must not stop an idle process before the supervisor knows a stop was asked (it would take that exit for a
        crash); the supervisor's `stopping` stops it instead (`_watch`)."""

        @contextmanager
        def capture_signals(self) -> Iterator[None]:
            yield

    return SupervisedServer


async def _watch(stopping: Any, server: Any) -> None:
    """Stop like SIGTERM does once the supervisor sets `stopping` (a signal may not reach this process).

    A poll, as hypercorn's own worker does: `stopping` is a multiprocessing Event, which has no awaitable form, and
    a thread blocked in its `wait()` would hold the process's exit.
    """
    while not stopping.is_set():  # noqa: ASYNC110 - a multiprocessing Event, not an asyncio one
        await asyncio.sleep(STOP_POLL_S)
    server.should_exit = True
