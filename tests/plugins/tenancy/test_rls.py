"""Isolation in the database itself, asked as the app role the servers use: no request code in between."""

from __future__ import annotations

import os
import subprocess
import sys

import asyncpg
import pytest

from kernel.testing.services import Database
from plugins.tenancy import rls
from plugins.tenancy.public import tenant_owned
from tests.plugins.tenancy.conftest import create_tenant

SET_TENANT = "SELECT set_config('app.current_tenant', $1, true)"


async def test_every_table_with_a_tenant_id_is_isolated(app_role: asyncpg.Connection) -> None:
    """Over the database every built-in plugin and the probe migrated: a plugin that forgets the helper fails here."""
    audits = await rls.audit(app_role)
    assert "tenantprobe_items" in [audit.table for audit in audits]  # the check is not vacuous
    failing = {audit.table: audit.problems for audit in audits if audit.problems}
    assert failing == {}


async def test_the_audit_names_each_shortfall(superuser: asyncpg.Connection) -> None:
    """Hand-made tables, each missing one part of tenant-owned, inside a transaction that is rolled back."""
    isolating = "tenant_id = current_setting('app.current_tenant')::uuid"
    tables = {
        "bare": [],
        "enabled_only": ["ALTER TABLE enabled_only ENABLE ROW LEVEL SECURITY"],
        "no_check": [
            "ALTER TABLE no_check ENABLE ROW LEVEL SECURITY",
            "ALTER TABLE no_check FORCE ROW LEVEL SECURITY",
            f"CREATE POLICY p ON no_check FOR SELECT USING ({isolating})",
        ],
        "opened": [
            *tenant_owned("opened"),
            "CREATE POLICY everyone_reads ON opened FOR SELECT USING (true)",
        ],
        "widened": [
            "ALTER TABLE widened ENABLE ROW LEVEL SECURITY",
            "ALTER TABLE widened FORCE ROW LEVEL SECURITY",
            f"CREATE POLICY p ON widened USING ({isolating} OR true) WITH CHECK ({isolating})",
        ],
        "helper_made": tenant_owned("helper_made"),
    }
    transaction = superuser.transaction()
    await transaction.start()
    try:
        for table, statements in tables.items():
            await superuser.execute(f"CREATE TABLE {table} (id serial PRIMARY KEY, tenant_id uuid)")
            for statement in statements:
                await superuser.execute(statement)
        found = {audit.table: audit.problems for audit in await rls.audit(superuser) if audit.table in tables}
    finally:
        await transaction.rollback()

    assert found["helper_made"] == ()
    assert found["bare"] == (
        "row-level security is not enabled",
        "row-level security is not forced, so the table's owner bypasses it",
        "no policy for all commands and roles with USING and WITH CHECK on tenant_id",
    )
    assert found["enabled_only"] == found["bare"][1:]
    assert found["no_check"] == (found["bare"][2],)
    assert found["opened"] == (
        "permissive policy 'everyone_reads' does not isolate tenants, and permissive policies add up",
    )
    assert found["widened"] == (
        found["bare"][2],
        "permissive policy 'p' does not isolate tenants, and permissive policies add up",
    )


async def test_no_tenant_set_means_a_loud_error(superuser: asyncpg.Connection, app_role: asyncpg.Connection) -> None:
    await create_tenant(superuser, items=1)
    # A connection that never saw the setting:
    with pytest.raises(
        asyncpg.UndefinedObjectError, match=r'unrecognized configuration parameter "app.current_tenant"'
    ):
        await app_role.fetch("SELECT * FROM tenantprobe_items")
    # One that served a tenant before: the transaction-local setting is back to empty, which is no tenant either.
    tenant = await create_tenant(superuser)
    async with app_role.transaction():
        await app_role.execute(SET_TENANT, tenant.id)
    with pytest.raises(asyncpg.InvalidTextRepresentationError, match="invalid input syntax for type uuid"):
        await app_role.fetch("SELECT * FROM tenantprobe_items")
    with pytest.raises(asyncpg.InvalidTextRepresentationError):
        await app_role.execute("INSERT INTO tenantprobe_items (body) VALUES ('unscoped')")


async def test_writing_another_tenants_rows_is_refused(
    superuser: asyncpg.Connection, app_role: asyncpg.Connection
) -> None:
    mine = await create_tenant(superuser, items=1)
    other = await create_tenant(superuser, items=2)
    others_ids = await superuser.fetch("SELECT id FROM tenantprobe_items WHERE tenant_id = $1", other.id)
    refused = "new row violates row-level security policy"

    async with app_role.transaction():
        await app_role.execute(SET_TENANT, mine.id)
        assert await app_role.fetchval("SELECT count(*) FROM tenantprobe_items") == 1
        new = await app_role.fetchrow("INSERT INTO tenantprobe_items (body) VALUES ('mine') RETURNING tenant_id::text")
        assert new["tenant_id"] == mine.id  # the column's default is the transaction's tenant

        for attempt in (
            "INSERT INTO tenantprobe_items (tenant_id, body) VALUES ($1, 'planted')",
            "UPDATE tenantprobe_items SET tenant_id = $1",
        ):
            savepoint = app_role.transaction()
            await savepoint.start()
            with pytest.raises(asyncpg.InsufficientPrivilegeError, match=refused):
                await app_role.execute(attempt, other.id)
            await savepoint.rollback()

        ids = [row["id"] for row in others_ids]
        assert (
            await app_role.execute("UPDATE tenantprobe_items SET body = 'taken' WHERE id = ANY($1)", ids) == "UPDATE 0"
        )
        assert await app_role.execute("DELETE FROM tenantprobe_items WHERE id = ANY($1)", ids) == "DELETE 0"

    bodies = await superuser.fetch("SELECT body FROM tenantprobe_items WHERE tenant_id = $1 ORDER BY id", other.id)
    assert [row["body"] for row in bodies] == [f"{other.slug}-seed-0", f"{other.slug}-seed-1"]


async def test_the_registry_is_read_only_and_own_row_only_inside_a_tenant(
    superuser: asyncpg.Connection, app_role: asyncpg.Connection
) -> None:
    mine = await create_tenant(superuser, domains=[f"mine-{os.getpid()}.example"])
    other = await create_tenant(superuser, domains=[f"other-{os.getpid()}.example"])
    assert await app_role.fetchval("SELECT count(*) FROM tenants WHERE id = ANY($1::uuid[])", [mine.id, other.id]) == 2

    async with app_role.transaction():
        await app_role.execute(SET_TENANT, mine.id)
        assert [row["id"] for row in await app_role.fetch("SELECT id::text FROM tenants")] == [mine.id]
        assert [row["tenant"] for row in await app_role.fetch("SELECT tenant::text FROM tenant_domains")] == [mine.id]
        assert await app_role.execute("UPDATE tenants SET name = 'renamed'") == "UPDATE 0"
        takeover = "UPDATE tenant_domains SET tenant = $1 WHERE domain = $2"
        assert await app_role.execute(takeover, mine.id, f"other-{os.getpid()}.example") == "UPDATE 0"
        with pytest.raises(asyncpg.InsufficientPrivilegeError, match="row-level security"):
            await app_role.execute("INSERT INTO tenants (slug, name) VALUES ('planted', 'planted')")

    assert await superuser.fetchval("SELECT name FROM tenants WHERE id = $1", mine.id) == mine.slug.upper()


@pytest.mark.parametrize("name", ["Orders", "orders; DROP TABLE tenants", "a.b.c", "", "x" * 64])
def test_tenant_owned_refuses_names_that_are_not_plain_identifiers(name: str) -> None:
    with pytest.raises(ValueError, match="lower_snake_case"):
        tenant_owned(name)


def test_the_migration_helper_says_when_the_table_does_not_exist_yet(migrated: Database) -> None:
    """As piccolo runs it in a migration (PICCOLO_CONF, the owner's engine), in a process of its own."""
    code = (
        "import asyncio\n"
        "from plugins.tenancy.public import make_tenant_owned\n"
        "asyncio.run(make_tenant_owned('not_created_yet')())\n"
    )
    environment = {key: value for key, value in os.environ.items() if not key.startswith("SOKO_")}
    environment |= {
        "PICCOLO_CONF": "kernel.piccolo_conf",
        "SOKO_DATABASE_OWNER_URL": migrated.owner_url,
        "SOKO_DATABASE_URL": migrated.app_url,
        "SOKO_ENV": "test",
    }
    result = subprocess.run(
        [sys.executable, "-c", code], env=environment, capture_output=True, text=True, check=False, timeout=60
    )
    assert result.returncode == 1
    assert "not_created_yet does not exist yet: piccolo runs add_raw before add_table" in result.stderr
