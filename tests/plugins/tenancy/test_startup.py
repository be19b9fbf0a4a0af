"""Startup refuses a database role that would bypass row-level security, and tables it does not isolate.

Real roles, created for the test and dropped after it; real `soko serve` processes.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Awaitable, Callable

import asyncpg
import pytest

from kernel.db import with_credentials
from kernel.testing.project import Project, free_port, wait_for
from kernel.testing.services import Servers, create_database, drop_database

PASSWORD = "role-under-test"  # a throwaway role that exists only during its test

RoleMaker = Callable[[str], Awaitable[str]]


@pytest.fixture
async def role(soko_servers: Servers) -> AsyncIterator[RoleMaker]:
    """Creates login roles with the given attributes; drops them (and what they own) afterwards."""
    admin = await asyncpg.connect(soko_servers.admin_url)
    made: list[str] = []

    async def make(attributes: str) -> str:
        name = f"soko_test_{uuid.uuid4().hex[:8]}"
        await admin.execute(f"CREATE ROLE {name} LOGIN PASSWORD '{PASSWORD}' {attributes}")
        made.append(name)
        return name

    try:
        yield make
    finally:
        for name in made:
            await admin.execute(f"DROP ROLE {name}")
        await admin.close()


@pytest.fixture
async def scratch(soko_servers: Servers) -> AsyncIterator[tuple[asyncpg.Connection, str]]:
    """A database of this test's own and its superuser's connection: what is made here upsets no other test."""
    database = await create_database(soko_servers.admin_url)
    connection = await asyncpg.connect(database.owner_url)
    try:
        yield connection, database.name
    finally:
        await connection.close()
        await drop_database(soko_servers.admin_url, database)


def refusal(project: Project, url: str) -> str:
    result = project.run("serve", "--bind", f"127.0.0.1:{free_port()}", SOKO_DATABASE_URL=url)
    assert result.returncode == 1, result.stdout + result.stderr
    return result.stderr


@pytest.mark.parametrize(("attributes", "power"), [("BYPASSRLS", "BYPASSRLS"), ("SUPERUSER", "SUPERUSER")])
async def test_a_role_that_bypasses_rls_is_refused_by_name(
    project: Project, role: RoleMaker, attributes: str, power: str
) -> None:
    name = await role(attributes)
    url = with_credentials(project.env["SOKO_DATABASE_URL"], user=name, password=PASSWORD)
    assert f"database role '{name}' is {power}, so row-level security would not apply" in refusal(project, url)


async def test_a_role_that_owns_a_tenant_table_is_refused_by_name(
    project: Project, role: RoleMaker, scratch: tuple[asyncpg.Connection, str]
) -> None:
    superuser, database = scratch
    owner = await role("")
    member = await role(f"IN ROLE {owner}")  # may act as the owner: just as dangerous
    await superuser.execute("CREATE TABLE orders (id serial PRIMARY KEY, tenant_id uuid)")
    await superuser.execute("ALTER TABLE orders ENABLE ROW LEVEL SECURITY")
    await superuser.execute(f"ALTER TABLE orders OWNER TO {owner}")
    for name in (owner, member):
        url = with_credentials(project.env["SOKO_DATABASE_URL"], user=name, password=PASSWORD, database=database)
        assert f"database role '{name}' owns tables with row-level security (orders)" in refusal(project, url)


async def test_a_table_with_a_tenant_id_but_no_isolation_stops_the_server(
    project: Project, superuser: asyncpg.Connection
) -> None:
    """A plugin that forgot the helper: the process stops at startup rather than serve that table."""
    table = f"forgotten_{uuid.uuid4().hex[:8]}"
    await superuser.execute(f"CREATE TABLE {table} (id serial PRIMARY KEY, tenant_id uuid, secret text)")
    try:
        server = project.start("serve", "--bind", f"127.0.0.1:{free_port()}", name="serve-refusing")
        try:
            wait_for(lambda: server.process.poll() is not None, timeout=30, what="soko serve to stop")
        finally:
            server.stop()
        assert f"{table}: row-level security is not enabled" in server.log()
        assert "refusing to serve" in server.log()
    finally:
        await superuser.execute(f"DROP TABLE {table}")
