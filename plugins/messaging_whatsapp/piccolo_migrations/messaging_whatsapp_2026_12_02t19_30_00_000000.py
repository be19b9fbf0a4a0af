"""Create the WhatsApp messages and contacts tables and make them tenant-owned.

A message's idempotency key is unique per tenant (the job's dedupe record); statuses are checked so a typo in code
cannot store a state the monotonic update does not know.
"""

from piccolo.apps.migrations.auto.migration_manager import MigrationManager
from piccolo.engine.finder import engine_finder

from plugins.tenancy.public import make_tenant_owned

ID = "2026-12-02T19:30:00:000000"
VERSION = "1.38.0"
DESCRIPTION = "messaging_whatsapp: messages and service windows"

# In the order a message moves forward; `failed` below `delivered` (one device failed, another got it).
STATUSES = "'queued', 'sending', 'accepted', 'sent', 'failed', 'delivered', 'read'"


def _ddl(statement: str):
    async def apply() -> None:
        engine = engine_finder()
        assert engine is not None, "run migrations with `soko migrate`"
        await engine.run_ddl(statement)

    return apply


async def forwards() -> MigrationManager:
    manager = MigrationManager(migration_id=ID, app_name="messaging_whatsapp", description=DESCRIPTION)
    manager.add_raw(
        _ddl(
            "CREATE FUNCTION whatsapp_status_rank(status text) RETURNS integer LANGUAGE sql IMMUTABLE "
            f"RETURN array_position(ARRAY[{STATUSES}], status)"
        )
    )
    manager.add_raw(
        _ddl(
            "CREATE TABLE whatsapp_messages (id uuid PRIMARY KEY DEFAULT gen_random_uuid(), "
            "idempotency_key text NOT NULL, recipient text NOT NULL, content jsonb NOT NULL, fallback jsonb, "
            "purpose text, "
            f"status text NOT NULL DEFAULT 'queued' CHECK (status IN ({STATUSES})), provider_message_id text, "
            "error_code text, provider_error_code text, attempts integer NOT NULL DEFAULT 0, "
            "next_attempt_at timestamptz NOT NULL DEFAULT now(), lease_until timestamptz, "
            "created_at timestamptz NOT NULL DEFAULT now(), updated_at timestamptz NOT NULL DEFAULT now())"
        )
    )
    manager.add_raw(make_tenant_owned("whatsapp_messages"))
    manager.add_raw(_ddl("CREATE UNIQUE INDEX whatsapp_messages_key ON whatsapp_messages (tenant_id, idempotency_key)"))
    manager.add_raw(
        _ddl("CREATE INDEX whatsapp_messages_provider_id ON whatsapp_messages (tenant_id, provider_message_id)")
    )
    manager.add_raw(
        _ddl(
            "CREATE INDEX whatsapp_messages_due ON whatsapp_messages (tenant_id, next_attempt_at) "
            "WHERE status IN ('queued', 'sending')"
        )
    )
    manager.add_raw(
        _ddl("CREATE TABLE whatsapp_contacts (customer text NOT NULL, last_inbound_at timestamptz NOT NULL)")
    )
    manager.add_raw(make_tenant_owned("whatsapp_contacts"))
    manager.add_raw(_ddl("ALTER TABLE whatsapp_contacts ADD PRIMARY KEY (tenant_id, customer)"))
    return manager
