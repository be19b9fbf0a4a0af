"""Fixtures of the payments tests, which also exercise the kernel's credential store and webhook inbox through
them: the fakepay test provider (./fakepay, pip-installed into a directory of its own and reached through
PYTHONPATH), a database migrated with every plugin they need, tenants, and kernels built in process.

Everything runs against the session's real PostgreSQL and Redis.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import shutil
import subprocess
import sys
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import asyncpg
import pytest

from kernel.kernel import Kernel, build_kernel
from kernel.settings import load_raw
from kernel.testing.project import Project
from kernel.testing.services import SESSION_CREDENTIALS_KEYS, Database, Servers

FAKEPAY_SOURCE = Path(__file__).parent / "fakepay"
WEBHOOK_SECRET = "fakepay-webhook-secret"
ENABLED = ["tenancy", "fakepay"]
MIGRATED = ["tenancy", "auth", "outbox", "fakepay"]  # auth needs a channel for its sign-in codes


@dataclass(frozen=True)
class TenantRow:
    id: str
    slug: str

    @property
    def host(self) -> dict[str, str]:
        return {"Host": f"{self.slug}.localhost"}


@pytest.fixture(scope="session")
def fakepay_site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    work = tmp_path_factory.mktemp("fakepay")
    shutil.copytree(FAKEPAY_SOURCE, work / "src", ignore=shutil.ignore_patterns("build", "*.egg-info", "__pycache__"))
    pip = [sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--no-build-isolation"]
    subprocess.run([*pip, "--target", str(work / "site"), str(work / "src")], check=True, capture_output=True)
    return work / "site"


def pay_project(
    root: Path, servers: Servers, database: Database, site: Path, *, enabled: list[str] = ENABLED, **test: Any
) -> Project:
    project = Project(root=root)
    project.env = {
        "SOKO_DATABASE_URL": database.app_url,
        "SOKO_DATABASE_OWNER_URL": database.owner_url,
        "SOKO_REDIS_URL": servers.redis_url,
        "SOKO_QUEUE_NAME": f"soko-test-{uuid.uuid4().hex[:8]}",
        "PYTHONPATH": str(site),
        "SOKO_CREDENTIALS_KEYS": SESSION_CREDENTIALS_KEYS,
    }
    project.settings(enabled, **test)
    project.plugin_config("tenancy", {"base_domains": ["localhost"]})
    return project


@pytest.fixture(scope="session")
def pay_database(
    tmp_path_factory: pytest.TempPathFactory, soko_servers: Servers, soko_database: Database, fakepay_site: Path
) -> Database:
    project = pay_project(
        tmp_path_factory.mktemp("pay-migrate"), soko_servers, soko_database, fakepay_site, enabled=MIGRATED
    )
    project.migrate()
    return soko_database


@pytest.fixture
def project(tmp_path: Path, soko_servers: Servers, pay_database: Database, fakepay_site: Path) -> Project:
    return pay_project(tmp_path, soko_servers, pay_database, fakepay_site)


@pytest.fixture
async def superuser(pay_database: Database) -> AsyncIterator[asyncpg.Connection]:
    connection = await asyncpg.connect(pay_database.owner_url)
    try:
        yield connection
    finally:
        await connection.close()


async def create_tenant(superuser: asyncpg.Connection) -> TenantRow:
    slug = f"p{uuid.uuid4().hex[:12]}"
    tenant_id = await superuser.fetchval(
        "INSERT INTO tenants (slug, name) VALUES ($1, $2) RETURNING id::text", slug, slug.upper()
    )
    return TenantRow(tenant_id, slug)


KernelFactory = Callable[..., Kernel]


@pytest.fixture
def make_kernel(project: Project, fakepay_site: Path, monkeypatch: pytest.MonkeyPatch) -> KernelFactory:
    """A kernel built in this process from the project's files; keywords become SOKO_* variables."""
    for name in [key for key in os.environ if key.startswith("SOKO_")]:
        monkeypatch.delenv(name)
    for name, value in project.environment().items():
        if name.startswith("SOKO_"):
            monkeypatch.setenv(name, value)
    monkeypatch.syspath_prepend(str(fakepay_site))

    def factory(**variables: str) -> Kernel:
        for name, value in variables.items():
            monkeypatch.setenv(f"SOKO_{name.upper()}", value)
        return build_kernel(load_raw(project.root))

    return factory


def signed(body: dict[str, Any]) -> tuple[bytes, dict[str, str]]:
    """A fakepay callback body and the headers that make it genuine."""
    raw = json.dumps(body).encode()
    signature = hmac.new(WEBHOOK_SECRET.encode(), raw, hashlib.sha256).hexdigest()
    return raw, {"Content-Type": "application/json", "X-Fakepay-Signature": f"sha256={signature}"}


@contextmanager
def local_kernel(project: Project) -> Iterator[Kernel]:
    """A kernel built in this process with the project's environment (for set-up, and for what a test asks it)."""
    with pytest.MonkeyPatch.context() as patch:
        for name, value in project.environment().items():
            patch.setenv(name, value)
        patch.syspath_prepend(project.env["PYTHONPATH"])
        yield build_kernel(load_raw(project.root))
