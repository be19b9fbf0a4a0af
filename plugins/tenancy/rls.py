"""Tenant-owned tables: the one way a plugin makes a table tenant-owned, and the audit that proves every one is.

A tenant-owned table has a `tenant_id uuid` column filled from the transaction's tenant, an index on it, row-level
security enabled and forced (so the owner is subject to it too), and one policy whose USING and WITH CHECK both
compare `tenant_id` with `current_setting('app.current_tenant')`, without `missing_ok`: a query with no tenant set
fails loudly instead of quietly seeing nothing.

The SQL below is replayed by migrations that already ran on databases in the field: change it only by adding a
new helper, never by editing this one.
"""

from __future__ import annotations

import json
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import asyncpg
from piccolo.engine.finder import engine_finder

COLUMN = "tenant_id"
CURRENT_TENANT = "current_setting('app.current_tenant')::uuid"
POLICY = "tenant_isolation"

_IDENTIFIER = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")


def tenant_owned(table: str) -> list[str]:
    """The statements that make `table` (`name` or `schema.name`, lower_snake_case) tenant-owned.

    Run them on an empty table: the column is added NOT NULL. Rows then get their tenant from the transaction
    (the column's default), and the policy refuses reading or writing any other tenant's rows.
    """
    quoted = _quoted(table)
    index = f"{table.rpartition('.')[2]}_{COLUMN}_idx"
    isolation = f"{COLUMN} = (SELECT {CURRENT_TENANT})"  # a sub-select runs once per query, not once per row
    return [
        f"ALTER TABLE {quoted} ADD COLUMN IF NOT EXISTS {COLUMN} uuid",
        # Set apart from ADD COLUMN: PostgreSQL evaluates an added column's default at once, with no tenant set.
        f"ALTER TABLE {quoted} ALTER COLUMN {COLUMN} SET DEFAULT {CURRENT_TENANT}",
        f"ALTER TABLE {quoted} ALTER COLUMN {COLUMN} SET NOT NULL",
        f'CREATE INDEX IF NOT EXISTS "{index}" ON {quoted} ({COLUMN})',
        f"ALTER TABLE {quoted} ENABLE ROW LEVEL SECURITY",
        f"ALTER TABLE {quoted} FORCE ROW LEVEL SECURITY",
        f"CREATE POLICY {POLICY} ON {quoted} USING ({isolation}) WITH CHECK ({isolation})",
    ]


def make_tenant_owned(table: str) -> Callable[[], Awaitable[None]]:
    """For a piccolo migration: `manager.add_raw(make_tenant_owned("orders"))`.

    piccolo runs `add_raw` before `add_table`, so call it in a migration after the one that creates the table.
    """
    statements = tenant_owned(table)  # a bad name fails when the migration is loaded, before anything runs

    async def apply() -> None:
        engine = engine_finder()
        if engine is None:
            raise RuntimeError("no piccolo engine: run migrations with `soko migrate`")
        try:
            for statement in statements:
                await engine.run_ddl(statement)
        except asyncpg.UndefinedTableError as error:
            raise RuntimeError(
                f"{table} does not exist yet: piccolo runs add_raw before add_table, so make a table "
                "tenant-owned in a migration after the one that creates it"
            ) from error

    return apply


@dataclass(frozen=True)
class TableAudit:
    """One table with a `tenant_id` column, and what makes it fall short of tenant-owned (nothing, ideally)."""

    table: str
    problems: tuple[str, ...]


_AUDIT = """
SELECT c.oid::regclass::text AS table_name, c.relrowsecurity AS enabled, c.relforcerowsecurity AS forced,
       COALESCE(json_agg(json_build_object(
           'name', p.polname, 'command', p.polcmd, 'permissive', p.polpermissive,
           'public', p.polroles = '{0}', 'using', pg_get_expr(p.polqual, p.polrelid),
           'check', pg_get_expr(p.polwithcheck, p.polrelid)
       )) FILTER (WHERE p.oid IS NOT NULL), '[]') AS policies
FROM pg_class c
JOIN pg_namespace n ON n.oid = c.relnamespace
JOIN pg_attribute a ON a.attrelid = c.oid AND a.attname = $1 AND a.attnum > 0 AND NOT a.attisdropped
LEFT JOIN pg_policy p ON p.polrelid = c.oid
WHERE c.relkind IN ('r', 'p') AND n.nspname NOT IN ('pg_catalog', 'information_schema')
GROUP BY c.oid
ORDER BY 1
"""


async def audit(connection: asyncpg.Connection) -> list[TableAudit]:
    """Every table of the database with a `tenant_id` column, checked for forced RLS and an isolating policy."""
    rows = await connection.fetch(_AUDIT, COLUMN)
    return [TableAudit(row["table_name"], tuple(_shortfalls(row))) for row in rows]


def _shortfalls(row: asyncpg.Record) -> list[str]:
    policies = json.loads(row["policies"]) if isinstance(row["policies"], str) else row["policies"]
    problems = []
    if not row["enabled"]:
        problems.append("row-level security is not enabled")
    if not row["forced"]:
        problems.append("row-level security is not forced, so the table's owner bypasses it")
    if not any(p["permissive"] and p["command"] == "*" and p["public"] and _isolates(p) for p in policies):
        problems.append(f"no policy for all commands and roles with USING and WITH CHECK on {COLUMN}")
    problems += [
        f"permissive policy {p['name']!r} does not isolate tenants, and permissive policies add up"
        for p in policies
        if p["permissive"] and not _isolates(p, check_required=False)
    ]
    return problems


def _isolates(policy: dict[str, str | None], *, check_required: bool = True) -> bool:
    """Whether a policy's expressions both pin `tenant_id` to the transaction's tenant.

    A textual check of PostgreSQL's own rendering: it must name the column and the setting and hold no OR, which
    would let rows of other tenants through. The helper's policy passes; hand-written variants may not.
    """
    expressions = [policy["using"], policy["check"]]
    if not check_required:
        expressions = [text for text in expressions if text is not None]
    return all(
        text is not None and COLUMN in text and "app.current_tenant" in text and " OR " not in text.upper()
        for text in expressions
    )


def _quoted(table: str) -> str:
    parts = table.split(".")
    if len(parts) > 2 or not all(_IDENTIFIER.match(part) for part in parts):
        raise ValueError(f"{table!r} is not a lower_snake_case table name (optionally schema-qualified)")
    return ".".join(f'"{part}"' for part in parts)
