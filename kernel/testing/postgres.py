"""A PostgreSQL cluster of a test's own (initdb + pg_ctl in a temporary directory), which the test may stop and
start again: how a database outage is staged without touching the machine's shared server.

Run as root, the cluster belongs to the `postgres` system user (initdb refuses root), through `runuser`.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from kernel.testing.project import free_port

SYSTEM_USER = "postgres"


@dataclass
class Cluster:
    """A running (or stopped) cluster: its superuser URL, and the means to stop and start it."""

    data: Path
    port: int

    @property
    def admin_url(self) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/postgres"

    def stop(self) -> None:
        """Fast shutdown: every connection is cut, new ones are refused, as when the server goes away."""
        _pg_ctl(self.data, "stop", "-m", "fast", "-w")

    def start(self) -> None:
        _pg_ctl(self.data, "start", "-w", "-l", str(self.data / "server.log"), "-o", f"-p {self.port} -k {self.data}")


@contextmanager
def cluster() -> Iterator[Cluster]:
    """A fresh cluster in a temporary directory of its own (pytest's are private to root, which the `postgres`
    user cannot enter), trusting local connections, stopped and removed afterwards."""
    directory = Path(tempfile.mkdtemp(prefix="soko-pg-"))
    data = directory / "pgdata"
    data.mkdir()
    if os.geteuid() == 0:
        shutil.chown(directory, SYSTEM_USER)
        shutil.chown(data, SYSTEM_USER)
    _as_owner([_binary("initdb"), "-D", str(data), "-U", "postgres", "--auth=trust", "-E", "UTF8"])
    running = Cluster(data, free_port())
    running.start()
    try:
        yield running
    finally:
        subprocess.run(
            _owner_command([_binary("pg_ctl"), "-D", str(data), "stop", "-m", "immediate"]),
            capture_output=True,
            check=False,
        )
        shutil.rmtree(directory, ignore_errors=True)


def _pg_ctl(data: Path, *args: str) -> None:
    _as_owner([_binary("pg_ctl"), "-D", str(data), *args])


def _as_owner(command: list[str]) -> None:
    result = subprocess.run(_owner_command(command), capture_output=True, text=True, check=False, timeout=120)
    if result.returncode != 0:
        raise RuntimeError(f"{' '.join(command)} failed:\n{result.stdout}{result.stderr}")


def _owner_command(command: list[str]) -> list[str]:
    return ["runuser", "-u", SYSTEM_USER, "--", *command] if os.geteuid() == 0 else command


def _binary(name: str) -> str:
    found = shutil.which(name)
    if found is None:
        raise RuntimeError(f"{name} is not on PATH: the outage tests need PostgreSQL's server binaries")
    return found
