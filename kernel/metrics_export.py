"""The `/metrics` listener of `soko serve` and `soko worker`: its own port (`metrics.bind`), never a store host.

`exporting(kernel)` runs in the command's parent process, before it starts its children: it gives them a fresh
multiprocess directory and starts one listener process (spawned, so it shares no threads or locks with the
forked taskiq children) that serves the sum of every child's values, plus the queue's depth read from Redis at
scrape time. The listener refuses a request whose `Host` does not name its own port: a storefront request that a
proxy forwarded here carries the shop's host on port 80/443, and gets 421. With `metrics.token` set, it also
requires `Authorization: Bearer <token>`.
"""

from __future__ import annotations

import contextlib
import hmac
import multiprocessing
import os
import shutil
import tempfile
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any
from wsgiref.simple_server import WSGIRequestHandler, make_server

from prometheus_client import CollectorRegistry, generate_latest, multiprocess
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.exposition import ThreadingWSGIServer
from prometheus_client.registry import Collector

from kernel import metrics

if TYPE_CHECKING:
    from kernel.kernel import Kernel

# The queue series this module adds at scrape time (metrics.exported_names lists them too).
QUEUE_SERIES = ("soko_queue_depth", "soko_queue_pending", "soko_queue_oldest_age_seconds")
_CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
_REDIS_TIMEOUT_S = 2.0
LISTEN_TIMEOUT_S = 20.0


class MetricsUnavailable(RuntimeError):
    """The metrics listener could not start: the command stops rather than run unobserved."""


class QueueCollector(Collector):
    """Depth (entered, not yet delivered), pending (delivered, not acknowledged) and the oldest job's age."""

    def __init__(self, redis_url: str, queue: str, group: str) -> None:
        from redis import Redis

        self._redis = Redis.from_url(
            redis_url, socket_timeout=_REDIS_TIMEOUT_S, socket_connect_timeout=_REDIS_TIMEOUT_S
        )
        self._queue = queue
        self._group = group

    def collect(self) -> Iterable[Metric]:
        depth, pending, oldest = self._read()
        for name, value, text in (
            (QUEUE_SERIES[0], depth, "Jobs in the stream not yet delivered to any worker."),
            (QUEUE_SERIES[1], pending, "Jobs delivered to a worker and not yet acknowledged (running or lost)."),
            (QUEUE_SERIES[2], oldest, "Age of the oldest job waiting or pending, 0 when there is none."),
        ):
            family = GaugeMetricFamily(name, text, labels=("queue",))
            family.add_metric((self._queue,), value)
            yield family

    def _read(self) -> tuple[float, float, float]:
        """The three values; NaN when Redis does not answer (the scrape still shows every other series)."""
        from redis.exceptions import RedisError, ResponseError

        try:
            return self._read_stream()
        except ResponseError:  # no stream yet: nothing was ever enqueued
            return 0.0, 0.0, 0.0
        except (RedisError, OSError):
            return float("nan"), float("nan"), float("nan")

    def _read_stream(self) -> tuple[float, float, float]:
        groups = {group["name"].decode(): group for group in self._redis.xinfo_groups(self._queue)}
        group = groups.get(self._group)
        if group is None:
            length = float(self._redis.xlen(self._queue))
            return length, 0.0, 0.0
        now_ms = time.time() * 1000
        ages = []
        summary = self._redis.xpending(self._queue, self._group)
        if summary["pending"]:
            ages.append(now_ms - _id_ms(summary["min"]))
        waiting = self._redis.xrange(self._queue, min=f"({group['last-delivered-id'].decode()}", count=1)
        if waiting:
            ages.append(now_ms - _id_ms(waiting[0][0]))
        lag = group.get("lag")
        depth = float(lag) if lag is not None else float(len(waiting))
        return depth, float(group["pending"]), max(ages, default=0.0) / 1000


def _id_ms(entry_id: bytes | str) -> float:
    text = entry_id.decode() if isinstance(entry_id, bytes) else entry_id
    return float(text.split("-", 1)[0])


def metrics_app(
    registry: CollectorRegistry, port: int, token: str | None
) -> Callable[[dict[str, Any], Callable[..., Any]], list[bytes]]:
    """The WSGI app: `/metrics` for a Host on this port (and the bearer token, if one is set); nothing else."""
    expected = f"Bearer {token}".encode() if token else None

    def app(environ: dict[str, Any], start_response: Callable[..., Any]) -> list[bytes]:
        host = environ.get("HTTP_HOST", "")
        if environ.get("PATH_INFO") != "/metrics":
            return _refuse(start_response, "404 Not Found", "only /metrics is served here")
        if host.rpartition(":")[2] != str(port):
            return _refuse(start_response, "421 Misdirected Request", "metrics are not served on this host")
        offered = environ.get("HTTP_AUTHORIZATION", "").encode()
        if expected is not None and not hmac.compare_digest(offered, expected):
            return _refuse(start_response, "401 Unauthorized", "send the metrics token as a bearer token")
        body = generate_latest(registry)
        start_response("200 OK", [("Content-Type", _CONTENT_TYPE), ("Content-Length", str(len(body)))])
        return [body]

    return app


def _refuse(start_response: Callable[..., Any], status: str, text: str) -> list[bytes]:
    body = text.encode()
    start_response(status, [("Content-Type", "text/plain; charset=utf-8"), ("Content-Length", str(len(body)))])
    return [body]


class _QuietHandler(WSGIRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        """Scrapes every few seconds would flood the log; failures show in Prometheus' `up`."""


def _live_pids(directory: str) -> set[int]:
    pids = set()
    for name in os.listdir(directory):
        if name.startswith("gauge_live") and name.endswith(".db"):
            with contextlib.suppress(ValueError):
                pids.add(int(name.rsplit("_", 1)[1][:-3]))
    return pids


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def serve_metrics(
    bind: str, token: str | None, directory: str, queue: tuple[str, str, str] | None, ready: Any = None
) -> None:
    """The listener process: serve until the parent that started it is gone (`ready` is set once it listens)."""
    parent = os.getppid()
    host, _, port = bind.rpartition(":")
    registry = CollectorRegistry()
    multiprocess.MultiProcessCollector(registry, path=directory)
    if queue is not None:
        registry.register(QueueCollector(*queue))
    server = make_server(
        host.strip("[]") or "0.0.0.0",  # noqa: S104 - an operator's explicit ":port" means every interface
        int(port),
        metrics_app(registry, int(port), token),
        ThreadingWSGIServer,
        handler_class=_QuietHandler,
    )
    threading.Thread(target=server.serve_forever, daemon=True).start()
    if ready is not None:
        ready.set()
    while os.getppid() == parent:
        for pid in _live_pids(directory):  # an in-flight gauge of a dead child must not count forever
            if not _alive(pid):
                multiprocess.mark_process_dead(pid, directory)
        time.sleep(1.0)
    server.shutdown()


@contextmanager
def exporting(kernel: Kernel, *, role: str) -> Iterator[None]:
    """In a command's parent: a fresh multiprocess directory for its children and, with `metrics.bind` set, the
    listener. Removes the directory when the command ends."""
    parent = os.environ.get("PROMETHEUS_MULTIPROC_DIR") or None
    directory = tempfile.mkdtemp(prefix=f"soko-{role}-metrics-", dir=parent)
    metrics.use_multiprocess_dir(directory)
    settings = kernel.settings.metrics
    listener = None
    try:
        if settings.bind:
            redis = kernel.settings.redis_url
            queue = None if redis is None else (redis.get_secret_value(), kernel.settings.queue_name, "soko")
            token = settings.token.get_secret_value() if settings.token else None
            spawn = multiprocessing.get_context("spawn")
            ready = spawn.Event()
            listener = spawn.Process(
                target=serve_metrics,
                args=(settings.bind, token, directory, queue, ready),
                name="soko-metrics",
                daemon=True,
            )
            listener.start()
            deadline = time.monotonic() + LISTEN_TIMEOUT_S
            while not ready.wait(0.1) and listener.is_alive() and time.monotonic() < deadline:
                pass
            if not ready.is_set():
                raise MetricsUnavailable(f"cannot listen on metrics.bind {settings.bind} (is the port taken?)")
        yield
    finally:
        if listener is not None:
            listener.terminate()
            listener.join(5)
        shutil.rmtree(directory, ignore_errors=True)
