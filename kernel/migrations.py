"""Migrations: the kernel's piccolo app first, then one app per enabled plugin.

`soko migrate` runs them as the owner role through piccolo's own machinery (which finds its engine and apps in
`kernel.piccolo_conf`). Checking what is pending needs only the app role: it reads piccolo's `migration` table.
"""

from __future__ import annotations

import contextlib
import importlib
import io
import os
from collections.abc import Mapping
from functools import cache
from typing import TYPE_CHECKING

import asyncpg
from piccolo.apps.migrations.commands.base import BaseMigrationManager
from piccolo.conf.apps import AppConfig

from kernel.settings import SettingsError

if TYPE_CHECKING:
    from piccolo.engine.postgres import PostgresEngine

    from kernel.kernel import Kernel

KERNEL_APP = "kernel.piccolo_app"


def app_paths(kernel: Kernel) -> list[str]:
    """Dotted paths of every piccolo app in play, each after the apps its `migration_dependencies` name (the
    kernel's first, then settings order where dependencies leave a choice)."""
    listed = [KERNEL_APP, *(path for _, path in kernel.call("piccolo_app"))]
    return dependency_order({path: importlib.import_module(path).APP_CONFIG for path in listed})


def app_configs(kernel: Kernel) -> list[AppConfig]:
    return [importlib.import_module(path).APP_CONFIG for path in app_paths(kernel)]


def dependency_order(configs: Mapping[str, AppConfig]) -> list[str]:
    """The app paths of `configs`, in their order except that each comes after its dependencies.

    A dependency that is not in play (its plugin is not enabled) or a cycle is a `SettingsError`: migrating in
    any other order would fail half way, on a missing table.
    """
    ordered: list[str] = []
    visiting: list[str] = []

    def visit(path: str) -> None:
        if path in ordered:
            return
        if path in visiting:
            raise SettingsError([f"piccolo apps depend on each other in a cycle: {' -> '.join([*visiting, path])}"])
        if path not in configs:
            raise SettingsError([f"{visiting[-1]} needs the migrations of {path}: enable the plugin that has them"])
        visiting.append(path)
        for dependency in configs[path].migration_dependencies:
            visit(dependency)
        visiting.pop()
        ordered.append(path)

    for path in configs:
        visit(path)
    return ordered


@cache
def _migration_ids(folder: str) -> tuple[str, ...]:
    return tuple(BaseMigrationManager().get_migration_modules(folder))


async def pending(kernel: Kernel, engine: PostgresEngine) -> list[str]:
    """`app:migration_id` for every migration not yet applied, oldest first per app."""
    async with engine.pool.acquire() as connection:
        try:
            rows = await connection.fetch("SELECT app_name, name FROM migration")
        except asyncpg.UndefinedTableError:
            rows = []
    applied = {(row["app_name"], row["name"]) for row in rows}
    return [
        f"{config.app_name}:{migration_id}"
        for config in app_configs(kernel)
        for migration_id in sorted(_migration_ids(config.resolved_migrations_folder_path))
        if (config.app_name, migration_id) not in applied
    ]


async def apply(kernel: Kernel) -> None:
    """Run every pending migration as the owner role, app by app in dependency order."""
    from piccolo.apps.migrations.commands.forwards import ForwardsMigrationManager

    os.environ["PICCOLO_CONF"] = "kernel.piccolo_conf"
    for config in app_configs(kernel):
        # piccolo prints a banner per app and migration; the caller says in one line what was applied.
        with contextlib.redirect_stdout(io.StringIO()) as chatter:
            result = await ForwardsMigrationManager(app_name=config.app_name).run()
        if not result.success:
            raise RuntimeError(f"migrations of {config.app_name!r} failed: {result.message}\n{chatter.getvalue()}")
