"""Platform writes to the tenant registry get their own path: four SECURITY DEFINER functions, and no write policy.

Before, with no tenant bound the app role could read and write every row of `tenants` and `tenant_domains`, so any
unscoped statement of the web process (a bug, a mistaken query) could suspend, rename or re-point a store. Now the
app role reads them with no tenant bound (resolution) and writes nothing directly: no row-level security policy
admits a write (UPDATE and DELETE match no row, INSERT is refused). The registry's operations (admin API, CLI,
`soko dev`'s seed) call the functions below, each doing one narrow thing, each refusing to run inside a tenant's
transaction. They run as the owner that runs migrations, which row-level security does not hold (enabled, not
forced), and take a fixed search_path.

Self-contained on purpose: a migration that already ran must keep meaning what it meant.
"""

# ruff: noqa: S608 - the SQL below is built from this module's constants only

from kernel.sql_migrations import sql_migration

ID = "2026-12-03T06:45:00:000000"
VERSION = "1.38.0"
DESCRIPTION = "tenant registry: platform writes through SECURITY DEFINER functions only"

_PLATFORM = "NULLIF(current_setting('app.current_tenant', true), '') IS NULL"
_DEFINER = "LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp"
_GUARD = f"""IF NOT ({_PLATFORM}) THEN
        RAISE EXCEPTION 'the tenant registry is written by the platform, never inside a tenant''s transaction'
            USING ERRCODE = 'insufficient_privilege';
    END IF;"""

STATEMENTS = [
    "DROP POLICY platform_scope ON tenants",
    f"CREATE POLICY platform_read ON tenants FOR SELECT USING ({_PLATFORM})",
    "DROP POLICY platform_scope ON tenant_domains",
    f"CREATE POLICY platform_read ON tenant_domains FOR SELECT USING ({_PLATFORM})",
    f"""CREATE FUNCTION public.soko_tenant_create(p_slug text, p_name text, p_domains text[])
        RETURNS uuid {_DEFINER} AS $$
    DECLARE created uuid;
    BEGIN
        {_GUARD}
        INSERT INTO tenants (slug, name) VALUES (p_slug, p_name) RETURNING id INTO created;
        INSERT INTO tenant_domains (domain, tenant) SELECT unnest(p_domains), created;
        RETURN created;
    END $$""",
    f"""CREATE FUNCTION public.soko_tenant_update(p_tenant uuid, p_name text, p_status text)
        RETURNS boolean {_DEFINER} AS $$
    BEGIN
        {_GUARD}
        UPDATE tenants SET name = COALESCE(p_name, name), status = COALESCE(p_status, status) WHERE id = p_tenant;
        RETURN FOUND;
    END $$""",
    f"""CREATE FUNCTION public.soko_tenant_add_domain(p_tenant uuid, p_domain text)
        RETURNS void {_DEFINER} AS $$
    BEGIN
        {_GUARD}
        INSERT INTO tenant_domains (domain, tenant) VALUES (p_domain, p_tenant);
    END $$""",
    f"""CREATE FUNCTION public.soko_tenant_remove_domain(p_tenant uuid, p_domain text)
        RETURNS boolean {_DEFINER} AS $$
    BEGIN
        {_GUARD}
        DELETE FROM tenant_domains WHERE domain = p_domain AND tenant = p_tenant;
        RETURN FOUND;
    END $$""",
]


forwards = sql_migration(ID, "tenancy", DESCRIPTION, STATEMENTS)
