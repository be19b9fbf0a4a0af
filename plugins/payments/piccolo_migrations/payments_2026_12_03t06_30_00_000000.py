"""Payment intents: tenant-owned, one row per attempt to pay an order, with the uniqueness money needs."""

from kernel.sql_migrations import sql_migration
from plugins.tenancy.public import tenant_owned

ID = "2026-12-03T06:30:00:000000"
VERSION = "1.38.0"
DESCRIPTION = "payments: payment intents"

STATUSES = "'created', 'pending', 'succeeded', 'failed', 'cancelled', 'expired', 'refunded'"

STATEMENTS = [
    f"""CREATE TABLE payment_intents (
        id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
        order_id uuid NOT NULL REFERENCES orders (id),
        amount bigint NOT NULL CHECK (amount >= 0),
        currency char(3) NOT NULL,
        provider varchar(64) NOT NULL,
        provider_ref varchar(255),
        receipt varchar(64),
        phone varchar(16) NOT NULL,
        status varchar(16) NOT NULL DEFAULT 'created' CHECK (status IN ({STATUSES})),
        idempotency_key varchar(255) NOT NULL,
        attempts integer NOT NULL DEFAULT 0,
        failure_code varchar(32),
        refund_required boolean NOT NULL DEFAULT false,
        created_at timestamptz NOT NULL DEFAULT now(),
        updated_at timestamptz NOT NULL DEFAULT now(),
        pending_at timestamptz,
        settled_at timestamptz
    )""",
    *tenant_owned("payment_intents"),
    "CREATE UNIQUE INDEX payment_intents_key ON payment_intents (tenant_id, idempotency_key)",
    "CREATE UNIQUE INDEX payment_intents_ref ON payment_intents (tenant_id, provider, provider_ref)",
    "CREATE UNIQUE INDEX payment_intents_receipt ON payment_intents (tenant_id, provider, receipt)",
    # One attempt at a time per order: a second POST while one is open is refused, never a second prompt.
    "CREATE UNIQUE INDEX payment_intents_one_active ON payment_intents (tenant_id, order_id) "
    "WHERE status IN ('created', 'pending')",
    # What reconciliation and the refunds list look up.
    "CREATE INDEX payment_intents_open ON payment_intents (tenant_id, status, updated_at) "
    "WHERE status IN ('created', 'pending')",
    "CREATE INDEX payment_intents_refunds ON payment_intents (tenant_id, settled_at) WHERE refund_required",
]


forwards = sql_migration(ID, "payments", DESCRIPTION, STATEMENTS)
