"""Create the outbox table and make it tenant-owned; an idempotency key is unique per tenant.

SQL in `add_raw` steps, which piccolo runs in order: the table exists before the tenancy helper runs.
"""

from piccolo.apps.migrations.auto.migration_manager import MigrationManager
from piccolo.engine.finder import engine_finder

from plugins.tenancy.public import make_tenant_owned

ID = "2026-11-28T22:30:00:000000"
VERSION = "1.38.0"
DESCRIPTION = "outbox: messages kept instead of sent"


def _ddl(statement: str):
    async def apply() -> None:
        engine = engine_finder()
        assert engine is not None, "run migrations with `soko migrate`"
        await engine.run_ddl(statement)

    return apply


async def forwards() -> MigrationManager:
    manager = MigrationManager(migration_id=ID, app_name="outbox", description=DESCRIPTION)
    manager.add_raw(
        _ddl(
            "CREATE TABLE outbox_messages (id uuid PRIMARY KEY DEFAULT gen_random_uuid(), recipient text NOT NULL, "
            "body text, template jsonb, idempotency_key text NOT NULL, created_at timestamptz NOT NULL DEFAULT now())"
        )
    )
    manager.add_raw(make_tenant_owned("outbox_messages"))
    manager.add_raw(
        _ddl("CREATE UNIQUE INDEX outbox_messages_idempotency_key ON outbox_messages (tenant_id, idempotency_key)")
    )
    manager.add_raw(_ddl("CREATE INDEX outbox_messages_created_idx ON outbox_messages (tenant_id, created_at)"))
    return manager
