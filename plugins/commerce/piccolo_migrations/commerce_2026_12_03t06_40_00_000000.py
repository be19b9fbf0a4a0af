"""Who may read an order: the SHA-256 of the token handed out at checkout, and the customer who was signed in."""

from piccolo.apps.migrations.auto.migration_manager import MigrationManager
from piccolo.engine.finder import engine_finder

ID = "2026-12-03T06:40:00:000000"
VERSION = "1.38.0"
DESCRIPTION = "commerce: order read tokens and the ordering customer"

STATEMENTS = [
    "ALTER TABLE orders ADD COLUMN access_token_hash bytea, ADD COLUMN customer_id uuid",
    "CREATE INDEX orders_customer ON orders (tenant_id, customer_id) WHERE customer_id IS NOT NULL",
]


async def change() -> None:
    engine = engine_finder()
    if engine is None:
        raise RuntimeError("no piccolo engine: run migrations with `soko migrate`")
    for statement in STATEMENTS:
        await engine.run_ddl(statement)


async def forwards() -> MigrationManager:
    manager = MigrationManager(migration_id=ID, app_name="commerce", description=DESCRIPTION)
    manager.add_raw(change)
    return manager
