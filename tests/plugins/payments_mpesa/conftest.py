"""Fixtures of the payments_mpesa tests: the Daraja simulator served on 127.0.0.1, a database migrated for the
plugin, a shop with credentials in the kernel's store, and a running kernel built from a project on disk.

Async fixtures are `pytest_asyncio.fixture`s, so the contract suite also runs under pytest-asyncio's strict mode.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import asyncpg
import pytest
import pytest_asyncio

from kernel.kernel import Kernel, build_kernel
from kernel.settings import load_raw
from kernel.testing.project import Project, free_port
from kernel.testing.services import SESSION_CREDENTIALS_KEYS, Database, Servers
from plugins.payments_mpesa.settings import SAFARICOM_NETWORKS
from plugins.payments_mpesa.simulator import DarajaSimulator

ENABLED = ["tenancy", "payments_mpesa"]
PASSKEY = "test-passkey-0123456789"


def mpesa_project(root: Path, servers: Servers, database: Database, daraja_url: str, **table: Any) -> Project:
    project = Project(root=root)
    project.env = {
        "SOKO_DATABASE_URL": database.app_url,
        "SOKO_DATABASE_OWNER_URL": database.owner_url,
        "SOKO_REDIS_URL": servers.redis_url,
        "SOKO_QUEUE_NAME": f"soko-test-{uuid.uuid4().hex[:8]}",
        "SOKO_CREDENTIALS_KEYS": SESSION_CREDENTIALS_KEYS,
    }
    project.settings(ENABLED)
    project.plugin_config("tenancy", {"base_domains": ["localhost"]})
    project.plugin_config(
        "payments_mpesa",
        {
            "mode": "simulator",
            "base_url": daraja_url,
            "callback_base_url": f"http://127.0.0.1:{free_port()}",
            # Safaricom's addresses, and the loopback the simulator calls back from.
            "ip_allowlist": True,
            "allowed_networks": [*SAFARICOM_NETWORKS, "127.0.0.1/32"],
        }
        | table,
    )
    return project


@contextmanager
def kernel_of(project: Project) -> Iterator[Kernel]:
    """A kernel built in this process with the project's environment."""
    with pytest.MonkeyPatch.context() as patch:
        for name in [key for key in project.environment() if key.startswith("SOKO_")]:
            patch.setenv(name, project.environment()[name])
        yield build_kernel(load_raw(project.root))


@pytest_asyncio.fixture(scope="session", loop_scope="session")
async def simulator() -> AsyncIterator[DarajaSimulator]:
    daraja = DarajaSimulator(callback_delay=0.1, late_seconds=0.5)
    async with daraja.serve() as url:
        daraja.url = url  # type: ignore[attr-defined]
        yield daraja


@pytest.fixture(scope="session")
def mpesa_database(
    tmp_path_factory: pytest.TempPathFactory, soko_servers: Servers, soko_database: Database
) -> Database:
    project = mpesa_project(tmp_path_factory.mktemp("mpesa-migrate"), soko_servers, soko_database, "http://127.0.0.1:9")
    project.migrate()
    return soko_database


@pytest.fixture(scope="session")
def project(
    tmp_path_factory: pytest.TempPathFactory,
    soko_servers: Servers,
    mpesa_database: Database,
    simulator: DarajaSimulator,
) -> Project:
    return mpesa_project(tmp_path_factory.mktemp("mpesa"), soko_servers, mpesa_database, simulator.url)  # type: ignore[attr-defined]


@pytest_asyncio.fixture(scope="session", loop_scope="session")
async def kernel(project: Project) -> AsyncIterator[Kernel]:
    with kernel_of(project) as built:
        pass  # the environment is read while building; the session's other tests must not see it
    async with built.running():
        yield built


async def create_tenant(owner_url: str) -> str:
    connection = await asyncpg.connect(owner_url)
    try:
        slug = f"m{uuid.uuid4().hex[:12]}"
        tenant_id: str = await connection.fetchval(
            "INSERT INTO tenants (slug, name) VALUES ($1, $2) RETURNING id::text", slug, slug.upper()
        )
    finally:
        await connection.close()
    return tenant_id


def new_credentials(simulator: DarajaSimulator) -> dict[str, str]:
    """A Daraja app and shortcode of their own (so token counts and caches are this test's alone)."""
    shortcode = str(100_000 + uuid.uuid4().int % 900_000)
    values = {
        "consumer_key": f"key-{uuid.uuid4().hex}",
        "consumer_secret": f"secret-{uuid.uuid4().hex}",
        "shortcode": shortcode,
        "passkey": PASSKEY,
    }
    simulator.add_account(values["consumer_key"], values["consumer_secret"], shortcode, PASSKEY)
    return values


@pytest_asyncio.fixture(loop_scope="session")
async def shop(kernel: Kernel, mpesa_database: Database, simulator: DarajaSimulator) -> str:
    """A tenant with its own M-Pesa credentials in the credential store."""
    tenant_id = await create_tenant(mpesa_database.owner_url)
    await kernel.credentials.put(tenant_id, "mpesa", new_credentials(simulator))
    return tenant_id
