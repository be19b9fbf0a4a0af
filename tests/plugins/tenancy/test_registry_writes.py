"""Platform writes to the tenant registry have their own path (issue 13, item 10): with no tenant bound, the app
role the web processes use reads the registry (resolution needs it) but cannot suspend, rename, re-point or plant
anything in it by a direct statement; only the registry's SECURITY DEFINER functions write, and they refuse to run
inside a tenant's transaction. The platform's own tools (the `soko tenants` CLI, the admin API) still work.
"""

from __future__ import annotations

import uuid

import asyncpg
import pytest

from kernel.testing.project import Project
from tests.plugins.tenancy.conftest import create_tenant

RUN = uuid.uuid4().hex[:8]  # domains and slugs no other test of this database uses
SET_TENANT = "SELECT set_config('app.current_tenant', $1, true)"


async def test_the_app_role_cannot_write_the_registry_directly(
    project: Project, superuser: asyncpg.Connection, app_role: asyncpg.Connection
) -> None:
    mine = await create_tenant(superuser, domains=[f"mine-{RUN}.example"])
    other = await create_tenant(superuser, domains=[f"other-{RUN}.example"])
    before = await superuser.fetch("SELECT * FROM tenants WHERE id = ANY($1::uuid[]) ORDER BY id", [mine.id, other.id])
    domains_before = await superuser.fetch("SELECT * FROM tenant_domains ORDER BY domain")

    # No tenant bound: the web role's unscoped statements, as a bug or a mistaken query would run them.
    assert await app_role.fetchval("SELECT count(*) FROM tenants WHERE id = ANY($1::uuid[])", [mine.id, other.id]) == 2
    unscoped = [
        ("UPDATE tenants SET status = 'suspended' WHERE id = $1", other.id),
        ("UPDATE tenants SET name = 'renamed' WHERE id = $1", other.id),
        ("UPDATE tenant_domains SET tenant = $1 WHERE domain = $2", mine.id, f"other-{RUN}.example"),
        ("DELETE FROM tenant_domains WHERE tenant = $1", other.id),
        ("DELETE FROM tenants WHERE id = $1", other.id),
    ]
    outcomes = [await app_role.execute(statement, *args) for statement, *args in unscoped]
    assert outcomes == ["UPDATE 0", "UPDATE 0", "UPDATE 0", "DELETE 0", "DELETE 0"]
    for statement, args in (
        ("INSERT INTO tenant_domains (domain, tenant) VALUES ($1, $2)", (f"planted-{RUN}.example", other.id)),
        ("INSERT INTO tenants (slug, name) VALUES ($1, 'planted')", (f"planted{RUN}",)),
    ):
        with pytest.raises(asyncpg.InsufficientPrivilegeError, match="row-level security"):
            await app_role.execute(statement, *args)

    # The platform's functions refuse inside a tenant's transaction.
    for call, args in (
        ("SELECT soko_tenant_update($1::uuid, NULL, 'suspended')", (other.id,)),
        ("SELECT soko_tenant_add_domain($1::uuid, $2)", (mine.id, f"taken-{RUN}.example")),
        ("SELECT soko_tenant_remove_domain($1::uuid, $2)", (other.id, f"other-{RUN}.example")),
        ("SELECT soko_tenant_create($1, 'planted', '{}')", (f"planted{RUN}",)),
    ):
        async with app_role.transaction():
            await app_role.execute(SET_TENANT, mine.id)
            with pytest.raises(asyncpg.InsufficientPrivilegeError, match="written by the platform"):
                await app_role.execute(call, *args)

    after = await superuser.fetch("SELECT * FROM tenants WHERE id = ANY($1::uuid[]) ORDER BY id", [mine.id, other.id])
    assert after == before
    assert await superuser.fetch("SELECT * FROM tenant_domains ORDER BY domain") == domains_before

    # The platform's own path: the CLI suspends and re-points through the functions.
    suspended = project.run("tenants", "suspend", other.slug)
    assert suspended.returncode == 0, suspended.stdout + suspended.stderr
    moved = project.run("tenants", "add-domain", mine.slug, f"added-{RUN}.example")
    assert moved.returncode == 0, moved.stdout + moved.stderr
    assert await superuser.fetchval("SELECT status FROM tenants WHERE id = $1", other.id) == "suspended"
    owner = await superuser.fetchval(
        "SELECT tenant::text FROM tenant_domains WHERE domain = $1", f"added-{RUN}.example"
    )
    assert owner == mine.id
