"""The embedded servers survive restarts and killed owners; supervise leaves no process behind."""

from __future__ import annotations

import asyncio
import os
import shlex
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import asyncpg
import psutil
import pytest
import redis.asyncio as aioredis

from kernel.dev import EmbeddedServices, embedded_services, supervise
from kernel.testing.project import wait_for

ROOT = Path(__file__).resolve().parents[2]

# Enters the embedded services in a fresh process, writes with this file's `_write`, then dies by SIGKILL.
_WRITE_THEN_SIGKILL = """
import asyncio, os, runpy, signal, sys
from pathlib import Path
from kernel.dev import embedded_services

write = runpy.run_path(sys.argv[2])["_write"]
with embedded_services(Path(sys.argv[1])) as services:
    asyncio.run(write(services))
    os.kill(os.getpid(), signal.SIGKILL)
"""

_SUPERVISE_GRANDCHILDREN = """
import os, sys
from kernel.dev import supervise

sys.exit(supervise([["sh", "-c", "sleep 300 & sleep 300"]], os.environ))
"""


def _server_pids(var_dir: Path) -> set[int]:
    """Live processes working in var_dir: postgres and redis-server both chdir to their data directory."""
    pids = set()
    for process in psutil.process_iter(["cwd", "status"]):
        cwd = process.info["cwd"]
        if cwd and process.info["status"] != psutil.STATUS_ZOMBIE and Path(cwd).is_relative_to(var_dir):
            pids.add(process.pid)
    return pids


def _group(pgid: int) -> dict[int, str]:
    """Live members of a process group, by pid, with their names."""
    members = {}
    for process in psutil.process_iter(["name", "status"]):
        try:
            if os.getpgid(process.pid) == pgid and process.info["status"] != psutil.STATUS_ZOMBIE:
                members[process.pid] = process.info["name"]
        except ProcessLookupError:
            continue
    return members


def _running(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


async def _write(services: EmbeddedServices) -> None:
    connection = await asyncpg.connect(services.database_url)
    try:
        await connection.execute("CREATE TABLE kept (value text)")
        await connection.execute("INSERT INTO kept VALUES ('kept')")
    finally:
        await connection.close()
    client = aioredis.from_url(services.redis_url)
    try:
        await client.set("kept", "kept")
    finally:
        await client.aclose()


async def _read(services: EmbeddedServices) -> tuple[str, bytes]:
    connection = await asyncpg.connect(services.database_url)
    try:
        row = await connection.fetchval("SELECT value FROM kept")
    finally:
        await connection.close()
    client = aioredis.from_url(services.redis_url)
    try:
        key = await client.get("kept")
    finally:
        await client.aclose()
    return row, key


@pytest.fixture
def var_dir(tmp_path: Path) -> Iterator[Path]:
    """A var directory whose servers are killed after the test, should a failing test leave them."""
    path = tmp_path.resolve() / "var"
    yield path
    for pid in _server_pids(path):
        psutil.Process(pid).kill()


def test_data_survives_a_clean_restart(var_dir: Path) -> None:
    # Deep enough that a unix socket inside it would exceed the 107-byte limit.
    deep = var_dir / ("d" * 100)
    with embedded_services(deep) as services:
        assert _server_pids(deep)
        asyncio.run(_write(services))
    wait_for(lambda: not _server_pids(deep), timeout=5, what="embedded servers to stop")

    with embedded_services(deep) as services:
        assert asyncio.run(_read(services)) == ("kept", b"kept")
    wait_for(lambda: not _server_pids(deep), timeout=5, what="embedded servers to stop")


def test_data_survives_an_owner_killed_by_sigkill(var_dir: Path) -> None:
    owner = subprocess.run(
        [sys.executable, "-c", _WRITE_THEN_SIGKILL, str(var_dir), __file__],
        cwd=ROOT,
        timeout=120,
        check=False,
    )
    assert owner.returncode == -signal.SIGKILL
    assert _server_pids(var_dir), "the servers outlive their killed owner"

    with embedded_services(var_dir) as services:
        assert asyncio.run(_read(services)) == ("kept", b"kept")
    wait_for(lambda: not _server_pids(var_dir), timeout=5, what="embedded servers to stop")


def test_sigterm_stops_every_process_of_every_group() -> None:
    supervisor = subprocess.Popen([sys.executable, "-c", _SUPERVISE_GRANDCHILDREN], cwd=ROOT)
    pgids: list[int] = []
    try:
        wait_for(lambda: bool(psutil.Process(supervisor.pid).children()), timeout=30, what="the children")
        pgids = [child.pid for child in psutil.Process(supervisor.pid).children()]
        wait_for(lambda: sum(name == "sleep" for name in _group(pgids[0]).values()) == 2, timeout=30, what="sleeps")
        pids = [pid for pgid in pgids for pid in _group(pgid)]

        supervisor.send_signal(signal.SIGTERM)
        assert supervisor.wait(timeout=30) == 0
        wait_for(
            lambda: not any(_running(pid) for pid in pids) and not any(map(_group, pgids)),
            timeout=30,
            what="every supervised process to exit",
        )
    finally:
        supervisor.kill()
        for pgid in pgids:
            for pid in _group(pgid):
                os.kill(pid, signal.SIGKILL)


def test_a_failing_child_stops_groups_that_ignore_sigterm(tmp_path: Path) -> None:
    pid_file = shlex.quote(str(tmp_path / "pids"))
    stubborn = f"trap '' TERM; sleep 300 & echo $$ $! > {pid_file}; wait"
    failing = f"i=0; until [ -s {pid_file} ] || [ $i -ge 600 ]; do sleep 0.05; i=$((i + 1)); done; exit 3"
    handlers = signal.getsignal(signal.SIGINT), signal.getsignal(signal.SIGTERM)

    code = supervise([["sh", "-c", stubborn], ["sh", "-c", failing]], os.environ, grace=0.5)

    assert code == 3
    assert (signal.getsignal(signal.SIGINT), signal.getsignal(signal.SIGTERM)) == handlers
    pids = [int(pid) for pid in (tmp_path / "pids").read_text().split()]
    wait_for(lambda: not any(_running(pid) for pid in pids), timeout=30, what="every process to exit")
