"""Guard the tenant registry in the database: valid values, and row-level security by scope.

With no tenant bound (resolution, the admin API, the CLI), the app role reads and writes every row. Inside a
tenant's transaction it reads its own tenant and its domains only, and writes nothing, so a tenant-scoped bug or
injection cannot read the list of stores, rename one, or point another store's domain elsewhere. RLS is enabled
but not forced: the owner running migrations and maintenance is not held to it.

Self-contained on purpose: a migration that already ran must keep meaning what it meant.
"""

from kernel.sql_migrations import sql_migration

ID = "2026-11-28T21:30:00:000000"
VERSION = "1.38.0"
DESCRIPTION = "tenant registry: checks and row-level security by scope"

_BOUND = "NULLIF(current_setting('app.current_tenant', true), '')"
_PLATFORM = f"{_BOUND} IS NULL"

STATEMENTS = [
    "ALTER TABLE tenants ADD CONSTRAINT tenants_status_check CHECK (status IN ('active', 'suspended'))",
    "ALTER TABLE tenants ADD CONSTRAINT tenants_slug_check CHECK (slug ~ '^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$')",
    "ALTER TABLE tenant_domains ADD CONSTRAINT tenant_domains_domain_check "
    "CHECK (domain ~ '^([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\\.)+[a-z0-9-]{2,63}$')",
    "ALTER TABLE tenants ENABLE ROW LEVEL SECURITY",
    f"CREATE POLICY platform_scope ON tenants USING ({_PLATFORM}) WITH CHECK ({_PLATFORM})",
    f"CREATE POLICY own_tenant ON tenants FOR SELECT USING (id = {_BOUND}::uuid)",
    "ALTER TABLE tenant_domains ENABLE ROW LEVEL SECURITY",
    f"CREATE POLICY platform_scope ON tenant_domains USING ({_PLATFORM}) WITH CHECK ({_PLATFORM})",
    f"CREATE POLICY own_tenant ON tenant_domains FOR SELECT USING (tenant = {_BOUND}::uuid)",
]


forwards = sql_migration(ID, "tenancy", DESCRIPTION, STATEMENTS)
