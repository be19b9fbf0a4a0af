"""Create auth's tables and make each tenant-owned; uniqueness is per tenant, so indexes follow `tenant_id`.

Written as SQL in `add_raw` steps, which piccolo runs in order: the tables exist before the tenancy helper runs.
"""

from piccolo.apps.migrations.auto.migration_manager import MigrationManager
from piccolo.engine.finder import engine_finder

from plugins.tenancy.public import make_tenant_owned

ID = "2026-11-28T22:30:00:000000"
VERSION = "1.38.0"
DESCRIPTION = "auth: customers, OTP codes, refresh tokens, staff, sessions"

TABLES = """
CREATE TABLE auth_customers (
    id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    phone text NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now()
);
CREATE TABLE auth_otp_codes (
    id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    phone text NOT NULL,
    code_hash text NOT NULL,
    attempts integer NOT NULL DEFAULT 0,
    expires_at timestamptz NOT NULL,
    used_at timestamptz,
    created_at timestamptz NOT NULL DEFAULT now()
);
CREATE TABLE auth_refresh_tokens (
    id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    token_hash text NOT NULL UNIQUE,
    family_id uuid NOT NULL,
    customer uuid NOT NULL REFERENCES auth_customers (id) ON DELETE CASCADE,
    expires_at timestamptz NOT NULL,
    used_at timestamptz,
    revoked_at timestamptz,
    created_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX auth_refresh_tokens_family_idx ON auth_refresh_tokens (family_id);
CREATE TABLE auth_staff (
    id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    email text NOT NULL,
    password_hash text NOT NULL,
    role text NOT NULL CHECK (role IN ('owner', 'staff')),
    created_at timestamptz NOT NULL DEFAULT now()
);
CREATE TABLE auth_sessions (
    id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    token_hash text NOT NULL UNIQUE,
    staff uuid NOT NULL REFERENCES auth_staff (id) ON DELETE CASCADE,
    expires_at timestamptz NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX auth_sessions_staff_idx ON auth_sessions (staff)
"""

PER_TENANT = """
CREATE UNIQUE INDEX auth_customers_phone_key ON auth_customers (tenant_id, phone);
CREATE UNIQUE INDEX auth_otp_codes_phone_key ON auth_otp_codes (tenant_id, phone);
CREATE UNIQUE INDEX auth_staff_email_key ON auth_staff (tenant_id, lower(email))
"""


def _statements(script: str):
    async def apply() -> None:
        engine = engine_finder()
        assert engine is not None, "run migrations with `soko migrate`"
        for statement in script.split(";"):
            await engine.run_ddl(statement.strip())

    return apply


async def forwards() -> MigrationManager:
    manager = MigrationManager(migration_id=ID, app_name="auth", description=DESCRIPTION)
    manager.add_raw(_statements(TABLES))
    for table in ("auth_customers", "auth_otp_codes", "auth_refresh_tokens", "auth_staff", "auth_sessions"):
        manager.add_raw(make_tenant_owned(table))
    manager.add_raw(_statements(PER_TENANT))
    return manager
