"""Fixtures for soko and for third-party plugins' own test suites (registered through `pytest11`).

- `soko_servers`: real PostgreSQL and Redis (SOKO_TEST_DATABASE_URL / SOKO_TEST_REDIS_URL, else embedded).
- `soko_database`: a database of this session's own, with the app role the kernel's migration creates.
- `soko_project`: a fresh project directory whose environment points at those, ready for `soko` processes.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from kernel.testing.project import Project
from kernel.testing.services import (
    SESSION_CREDENTIALS_KEYS,
    Database,
    Servers,
    create_database,
    drop_database,
    servers,
)


@pytest.fixture(scope="session")
def soko_servers() -> Iterator[Servers]:
    with servers(Path.cwd() / "var" / "test") as found:
        yield found


@pytest.fixture(scope="session")
def soko_database(soko_servers: Servers) -> Iterator[Database]:
    database = asyncio.run(create_database(soko_servers.admin_url))
    try:
        yield database
    finally:
        asyncio.run(drop_database(soko_servers.admin_url, database))


@pytest.fixture
def soko_project(tmp_path: Path, soko_servers: Servers, soko_database: Database) -> Project:
    project = Project(root=tmp_path)
    project.env = {
        "SOKO_DATABASE_URL": soko_database.app_url,
        "SOKO_DATABASE_OWNER_URL": soko_database.owner_url,
        "SOKO_REDIS_URL": soko_servers.redis_url,
        "SOKO_QUEUE_NAME": f"soko-test-{uuid.uuid4().hex[:8]}",
        "SOKO_CREDENTIALS_KEYS": SESSION_CREDENTIALS_KEYS,
    }
    return project.settings()
