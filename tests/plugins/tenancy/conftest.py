"""Fixtures of the tenancy tests: the probe plugin, a database migrated with every built-in plugin and the probe,
tenants with rows, and kernels built in process from a project's own settings files.

The probe plugin (./probe) is pip-installed into a directory of its own and reaches processes through
PYTHONPATH, so the virtualenv never changes. Everything runs against the session's real PostgreSQL and Redis.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import uuid
from collections.abc import AsyncIterator, Callable, Iterable
from importlib.metadata import entry_points
from pathlib import Path
from typing import Any

import asyncpg
import pytest
from quart.typing import TestClientProtocol

from kernel.app import create_app
from kernel.kernel import Kernel, build_kernel
from kernel.settings import load_raw
from kernel.testing.project import Project
from kernel.testing.services import Database, Servers
from kernel.testing.tenants import TestTenant as TenantRow
from kernel.testing.tenants import create_tenant as new_tenant

PROBE_SOURCE = Path(__file__).parent / "probe"
ADMIN_TOKEN = "platform-admin-token-for-the-tenancy-tests"
POOL_MAX = 4
TENANCY_CONFIG: dict[str, Any] = {
    "base_domains": ["localhost"],
    "header_routes": ["/probe/items", "/probe/jobs"],
    # /probe/pool inspects every pooled connection: it must not hold one itself.
    "exempt_routes": ["/healthz", "/readyz", "/openapi.json", "/probe/pool"],
}


def built_in_plugins() -> list[str]:
    return sorted(ep.name for ep in entry_points(group="soko.plugins") if ep.value.startswith("plugins."))


@pytest.fixture(scope="session")
def probe_site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The probe plugin, installed (with its entry point) into a directory that only our processes see."""
    work = tmp_path_factory.mktemp("probe")
    shutil.copytree(PROBE_SOURCE, work / "src", ignore=shutil.ignore_patterns("build", "*.egg-info", "__pycache__"))
    pip = [sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--no-build-isolation"]
    subprocess.run(
        [*pip, "--target", str(work / "site"), str(work / "src")],
        check=True,
        capture_output=True,
    )
    return work / "site"


def tenancy_project(
    root: Path,
    servers: Servers,
    database: Database,
    site: Path,
    *,
    enabled: Iterable[str] = ("tenancy", "tenantprobe"),
    **tenancy: Any,
) -> Project:
    """A project enabling tenancy and the probe, with a pool smaller than any test's concurrency."""
    project = Project(root=root)
    project.env = {
        "SOKO_DATABASE_URL": database.app_url,
        "SOKO_DATABASE_OWNER_URL": database.owner_url,
        "SOKO_REDIS_URL": servers.redis_url,
        "SOKO_QUEUE_NAME": f"soko-test-{uuid.uuid4().hex[:8]}",
        "SOKO_PLUGINS__TENANCY__ADMIN_TOKEN": ADMIN_TOKEN,
        "PYTHONPATH": str(site),
    }
    project.settings(list(enabled), database_pool_max=POOL_MAX)
    project.plugin_config("tenancy", TENANCY_CONFIG | tenancy)
    return project


@pytest.fixture(scope="session")
def migrated(
    tmp_path_factory: pytest.TempPathFactory, soko_servers: Servers, soko_database: Database, probe_site: Path
) -> Database:
    """The session database with the migrations of every built-in plugin and of the probe applied."""
    root = tmp_path_factory.mktemp("migrate")
    project = tenancy_project(
        root, soko_servers, soko_database, probe_site, enabled=[*built_in_plugins(), "tenantprobe"]
    )
    project.migrate()
    return soko_database


@pytest.fixture
def project(tmp_path: Path, soko_servers: Servers, migrated: Database, probe_site: Path) -> Project:
    return tenancy_project(tmp_path, soko_servers, migrated, probe_site)


@pytest.fixture
async def superuser(migrated: Database) -> AsyncIterator[asyncpg.Connection]:
    """The migration owner (a superuser in tests): sees and writes every tenant's rows, for set-up and checks."""
    connection = await asyncpg.connect(migrated.owner_url)
    try:
        yield connection
    finally:
        await connection.close()


@pytest.fixture
async def app_role(migrated: Database) -> AsyncIterator[asyncpg.Connection]:
    """A fresh connection as the app role the servers use."""
    connection = await asyncpg.connect(migrated.app_url)
    try:
        yield connection
    finally:
        await connection.close()


async def create_tenant(
    superuser: asyncpg.Connection, *, status: str = "active", domains: Iterable[str] = (), items: int = 0
) -> TenantRow:
    """A tenant with a fresh slug, its domains, and `items` rows marked with its slug."""
    tenant = await new_tenant(superuser, status=status, domains=domains)
    await superuser.executemany(
        "INSERT INTO tenantprobe_items (tenant_id, body) VALUES ($1, $2)",
        [(tenant.id, f"{tenant.slug}-seed-{n}") for n in range(items)],
    )
    return tenant


KernelFactory = Callable[..., Kernel]


@pytest.fixture
def make_kernel(project: Project, probe_site: Path, monkeypatch: pytest.MonkeyPatch) -> KernelFactory:
    """A kernel built in this process from the project's files and environment; keywords change its tenancy table."""
    for name in [key for key in os.environ if key.startswith("SOKO_")]:
        monkeypatch.delenv(name)
    for name, value in project.environment().items():
        if name.startswith("SOKO_"):
            monkeypatch.setenv(name, value)
    monkeypatch.syspath_prepend(str(probe_site))

    def factory(**tenancy: Any) -> Kernel:
        project.plugin_config("tenancy", TENANCY_CONFIG | tenancy)
        return build_kernel(load_raw(project.root))

    return factory


@pytest.fixture
async def client(make_kernel: KernelFactory) -> AsyncIterator[TestClientProtocol]:
    """A test client of an app served in process (its lifespan entered), with the default test settings."""
    app = create_app(make_kernel())
    async with app.test_app() as test_app:
        yield test_app.test_client()
