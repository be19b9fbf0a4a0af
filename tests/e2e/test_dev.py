"""`soko dev` (what `make run` starts): embedded servers, web and worker; Ctrl-C leaves nothing behind."""

from __future__ import annotations

import shutil
import signal
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import psutil
import pytest

from kernel.testing.project import Project, free_port, wait_for


def _serving(url: str) -> bool:
    try:
        return httpx.get(url, timeout=1).status_code == 200
    except httpx.TransportError:
        return False


def _descendants(pid: int) -> list[psutil.Process]:
    try:
        return psutil.Process(pid).children(recursive=True)
    except psutil.NoSuchProcess:
        return []


def _using(directory) -> list[psutil.Process]:
    """Daemonised servers (postgres, redis-server) are not children: find them by their data directory."""
    found = []
    for process in psutil.process_iter(["cmdline"]):
        if str(directory) in " ".join(process.info["cmdline"] or ()):
            found.append(process)
    return found


@pytest.fixture
def dev_root() -> Iterator[Path]:
    """A project directory the embedded PostgreSQL's own user can reach (pytest's tmp_path is root-only)."""
    root = Path.cwd() / "var" / f"e2e-dev-{uuid.uuid4().hex[:8]}"
    root.mkdir(parents=True)
    try:
        yield root
    finally:
        shutil.rmtree(root, ignore_errors=True)


def test_dev_serves_stops_cleanly_and_restarts_quickly(dev_root: Path) -> None:
    project = Project(root=dev_root).settings()
    port = free_port()
    env = {"SOKO_ENV": "development", "SOKO_BIND": f"127.0.0.1:{port}"}
    url = f"http://127.0.0.1:{port}/readyz"
    for attempt in ("first start", "restart"):
        started = time.monotonic()
        dev = project.start("dev", name=f"dev-{attempt.replace(' ', '-')}", **env)
        try:
            wait_for(lambda: _serving(url), timeout=60, what=f"soko dev {attempt}")
            elapsed = time.monotonic() - started
            assert elapsed < 30, f"{attempt} took {elapsed:.1f}s"
            family = [psutil.Process(dev.process.pid), *_descendants(dev.process.pid), *_using(dev_root)]
            names = " ".join(" ".join(p.cmdline()) for p in family)
            assert "kernel serve" in names
            assert "kernel worker" in names
            assert "postgres" in names
        finally:
            code = dev.stop(signal.SIGINT, timeout=40)
        assert code == 0, dev.log()
        wait_for(
            lambda family=family: not any(p.is_running() and p.status() != "zombie" for p in family),
            timeout=20,
            what="every process of soko dev to exit",
        )
    assert (dev_root / "var" / "postgres" / "PG_VERSION").exists(), "data stays for the next start"
