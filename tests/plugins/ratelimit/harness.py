"""What the ratelimit and security tests share: the probe plugin installed aside, projects that serve it, and
HTTP clients that connect from a chosen loopback address (127.0.0.0/8 is all loopback on Linux), so a test can be
a trusted proxy (127.0.0.1) or any number of untrusted peers."""

from __future__ import annotations

import itertools
import shutil
import subprocess
import sys
import uuid
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import httpx
import pytest

from kernel.testing.project import Project
from kernel.testing.services import Database, Servers

PROBE = Path(__file__).resolve().parent / "probe"
PIP_INSTALL = [sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--no-build-isolation"]
PROXY = "127.0.0.1"  # the trusted proxy of the tests' settings
# Tests about counting must not fail open because a loaded machine's event loop lags past 100 ms; the timeout and
# the failure modes have their own test (test_outage.py).
COUNTING_TIMEOUT_MS = 2000


@pytest.fixture(scope="session")
def edgeprobe(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """pip-install the probe plugin into a directory of its own (built from a copy: no build files in the tree)."""
    source = tmp_path_factory.mktemp("edgeprobe-src") / "probe"
    shutil.copytree(PROBE, source)
    target = tmp_path_factory.mktemp("edgeprobe")
    subprocess.run(
        [*PIP_INSTALL, "--target", str(target), str(source)],
        check=True,
        capture_output=True,
    )
    return target


def probe_project(
    root: Path,
    servers: Servers,
    database: Database,
    probe: Path,
    enabled: list[str],
    configs: Mapping[str, Mapping[str, Any]],
    env: Mapping[str, str] | None = None,
    *,
    with_probe: bool = True,
) -> Project:
    """A migrated project serving `enabled` (and the probe, unless told not to: it would shadow the auth plugin's
    routes), with `configs` as config/<plugin>.yaml tables and `env` as extra variables."""
    project = Project(root=root)
    project.env = {
        "SOKO_DATABASE_URL": database.app_url,
        "SOKO_DATABASE_OWNER_URL": database.owner_url,
        "SOKO_REDIS_URL": servers.redis_url,
        "SOKO_QUEUE_NAME": f"soko-test-{uuid.uuid4().hex[:8]}",
        "PYTHONPATH": str(probe),
        **(env or {}),
    }
    project.settings([*enabled, "edgeprobe"] if with_probe else enabled)
    for plugin, table in configs.items():
        project.plugin_config(plugin, table)
    project.migrate()
    return project


def client(base_url: str, address: str = "127.0.0.2", **kwargs: Any) -> httpx.Client:
    """Requests from `address`, each on a new connection, so a multi-process server spreads them."""
    transport = httpx.HTTPTransport(local_address=address, limits=httpx.Limits(max_keepalive_connections=0))
    return httpx.Client(base_url=base_url, transport=transport, timeout=10, **kwargs)


_addresses = itertools.count(1)


def unique_address() -> str:
    """An untrusted loopback peer no other test of this run uses (127.1.x.y)."""
    number = next(_addresses)
    return f"127.1.{number // 256}.{number % 256}"
