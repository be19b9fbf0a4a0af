"""Create the app role: it may log in and read and write rows, nothing more.

It is not superuser, has no BYPASSRLS, owns nothing, and gets only the privileges below, so row-level security
always applies to it. Its name and password come from SOKO_DATABASE_URL; the owner running this migration keeps
ownership of every table, and default privileges extend the grants to tables later migrations create.
"""

import os
from urllib.parse import unquote, urlsplit

from piccolo.apps.migrations.auto.migration_manager import MigrationManager
from piccolo.engine.finder import engine_finder

ID = "2026-11-28T21:00:00:000000"
VERSION = "1.38.0"
DESCRIPTION = "app role with least privilege"


async def forwards() -> MigrationManager:
    manager = MigrationManager(migration_id=ID, app_name="kernel", description=DESCRIPTION)

    async def create_app_role() -> None:
        url = urlsplit(os.environ.get("SOKO_DATABASE_URL", ""))
        if not url.username:
            raise RuntimeError("set SOKO_DATABASE_URL (with the app role's user name) before migrating")
        engine = engine_finder()
        assert engine is not None
        name = unquote(url.username)
        quoted = '"' + name.replace('"', '""') + '"'
        owner = (await engine._run_in_new_connection("SELECT current_user AS name"))[0]["name"]
        if owner == name:
            raise RuntimeError("SOKO_DATABASE_URL must name the app role, not the owner that runs migrations")
        password = unquote(url.password) if url.password else None
        statements = [
            f"""DO $$ BEGIN
                IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = {_literal(name)}) THEN
                    CREATE ROLE {quoted} LOGIN NOSUPERUSER NOBYPASSRLS NOCREATEDB NOCREATEROLE NOINHERIT;
                END IF;
            END $$""",
            f"ALTER ROLE {quoted} NOSUPERUSER NOBYPASSRLS NOCREATEDB NOCREATEROLE",
            f"GRANT USAGE ON SCHEMA public TO {quoted}",
            f"GRANT SELECT ON migration TO {quoted}",
            f"ALTER DEFAULT PRIVILEGES IN SCHEMA public GRANT SELECT, INSERT, UPDATE, DELETE ON TABLES TO {quoted}",
            f"ALTER DEFAULT PRIVILEGES IN SCHEMA public GRANT USAGE, SELECT ON SEQUENCES TO {quoted}",
        ]
        if password:
            statements.append(f"ALTER ROLE {quoted} PASSWORD {_literal(password)}")
        for statement in statements:
            await engine.run_ddl(statement)

    manager.add_raw(create_app_role)
    return manager


def _literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"
