"""Every payment_event fakepay's hook saw, one row per delivery (so a doubled delivery shows as two rows)."""

from piccolo.apps.migrations.auto.migration_manager import MigrationManager
from piccolo.engine.finder import engine_finder

from plugins.tenancy.public import tenant_owned

ID = "2026-12-02T19:30:00:000000"
VERSION = "1.38.0"
DESCRIPTION = "fakepay deliveries"


async def create() -> None:
    engine = engine_finder()
    assert engine is not None
    statements = [
        "CREATE TABLE fakepay_deliveries (id bigserial PRIMARY KEY, dedupe_key text NOT NULL, "
        "bound_tenant text NOT NULL, status text NOT NULL, at timestamptz NOT NULL DEFAULT now())",
        *tenant_owned("fakepay_deliveries"),
    ]
    for statement in statements:
        await engine.run_ddl(statement)


async def forwards() -> MigrationManager:
    manager = MigrationManager(migration_id=ID, app_name="fakepay", description=DESCRIPTION)
    manager.add_raw(create)
    return manager
