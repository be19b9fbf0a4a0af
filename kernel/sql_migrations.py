"""What a migration file written in SQL needs: run its statements in order on the engine `soko migrate` set up.

Row-level security, SECURITY DEFINER functions and partial indexes are SQL that piccolo's table API cannot say,
so most of soko's migrations are a list of statements. A file that is only that declares

    forwards = sql_migration(ID, "myplugin", DESCRIPTION, STATEMENTS)

and one that mixes piccolo's operations with SQL adds `manager.add_raw(run_sql(STATEMENTS))`.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence

from piccolo.apps.migrations.auto.migration_manager import MigrationManager
from piccolo.engine.finder import engine_finder


def run_sql(statements: Sequence[str]) -> Callable[[], Awaitable[None]]:
    """A raw migration step that runs each statement in order."""

    async def apply() -> None:
        engine = engine_finder()
        if engine is None:
            raise RuntimeError("no piccolo engine: run migrations with `soko migrate`")
        for statement in statements:
            await engine.run_ddl(statement)

    return apply


def sql_migration(
    migration_id: str, app_name: str, description: str, statements: Sequence[str]
) -> Callable[[], Awaitable[MigrationManager]]:
    """The `forwards` of a migration that only runs `statements`."""

    async def forwards() -> MigrationManager:
        manager = MigrationManager(migration_id=migration_id, app_name=app_name, description=description)
        manager.add_raw(run_sql(statements))
        return manager

    return forwards
