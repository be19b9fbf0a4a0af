"""Idempotency records: tenant-owned, one per (tenant, caller, key)."""

from kernel.sql_migrations import sql_migration
from plugins.tenancy.public import tenant_owned

ID = "2026-11-28T22:30:00:000000"
VERSION = "1.38.0"
DESCRIPTION = "idempotency: keys, their claims and recorded responses"

STATEMENTS = [
    """CREATE TABLE idempotency_keys (
        caller varchar(255) NOT NULL,
        key varchar(255) NOT NULL,
        fingerprint char(64) NOT NULL,
        claim uuid NOT NULL,
        state varchar(16) NOT NULL CHECK (state IN ('in_progress', 'completed')),
        status smallint,
        headers jsonb,
        body bytea,
        created_at timestamptz NOT NULL DEFAULT now(),
        locked_until timestamptz NOT NULL,
        expires_at timestamptz NOT NULL
    )""",
    *tenant_owned("idempotency_keys"),
    "ALTER TABLE idempotency_keys ADD PRIMARY KEY (tenant_id, caller, key)",
    "CREATE INDEX idempotency_keys_expiry ON idempotency_keys (tenant_id, expires_at)",
]


forwards = sql_migration(ID, "idempotency", DESCRIPTION, STATEMENTS)
