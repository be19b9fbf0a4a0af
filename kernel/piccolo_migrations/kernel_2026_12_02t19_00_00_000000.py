"""The credential store, webhook routes and the webhook inbox.

- `credentials`: one encrypted row per (tenant, receiver), tenant-owned under forced row-level security with the
  same policy shape the tenancy audit checks (written out here: the kernel cannot use a plugin's helper).
- Schema `soko_kernel` holds what must be read before any tenant is known: `webhook_routes` (a receiver's routing
  key or a provider reference -> tenant) and `webhook_inbox` (every verified webhook event). The app role has no
  privilege on the schema at all; it reaches these tables only through the SECURITY DEFINER functions below,
  each of which does one narrow thing, so row-level security is never opened for a lookup. The owner running
  this migration owns them, and they are not subject to RLS (no tenant owns an inbox row before it is routed).
"""

# ruff: noqa: S608 - the SQL below is built from this module's constants only

from kernel.sql_migrations import sql_migration

ID = "2026-12-02T19:00:00:000000"
VERSION = "1.38.0"
DESCRIPTION = "credential store, webhook routes and webhook inbox"

_TENANT = "current_setting('app.current_tenant')::uuid"
_ISOLATION = f"tenant_id = (SELECT {_TENANT})"
_DEFINER = "SECURITY DEFINER SET search_path = soko_kernel, pg_temp"

STATEMENTS = [
    f"""CREATE TABLE credentials (
        tenant_id uuid NOT NULL DEFAULT {_TENANT},
        receiver varchar(64) NOT NULL,
        key_id varchar(64) NOT NULL,
        nonce bytea NOT NULL,
        ciphertext bytea NOT NULL,
        updated_at timestamptz NOT NULL DEFAULT now(),
        PRIMARY KEY (tenant_id, receiver)
    )""",
    'CREATE INDEX IF NOT EXISTS "credentials_tenant_id_idx" ON credentials (tenant_id)',
    "ALTER TABLE credentials ENABLE ROW LEVEL SECURITY",
    "ALTER TABLE credentials FORCE ROW LEVEL SECURITY",
    f"CREATE POLICY tenant_isolation ON credentials USING ({_ISOLATION}) WITH CHECK ({_ISOLATION})",
    "CREATE SCHEMA soko_kernel",
    "REVOKE ALL ON SCHEMA soko_kernel FROM PUBLIC",
    """CREATE TABLE soko_kernel.webhook_routes (
        receiver text NOT NULL,
        kind text NOT NULL,
        route_key text NOT NULL,
        tenant uuid NOT NULL,
        created_at timestamptz NOT NULL DEFAULT now(),
        PRIMARY KEY (receiver, kind, route_key, tenant)
    )""",
    "CREATE INDEX webhook_routes_by_tenant ON soko_kernel.webhook_routes (tenant, receiver, kind)",
    """CREATE TABLE soko_kernel.webhook_inbox (
        id bigserial PRIMARY KEY,
        kind text NOT NULL CHECK (kind IN ('payments', 'messaging')),
        receiver text NOT NULL,
        dedupe_key text NOT NULL,
        event_type text NOT NULL,
        event jsonb NOT NULL,
        path_tenant uuid,
        status text NOT NULL DEFAULT 'received' CHECK (status IN ('received', 'processed', 'quarantined')),
        tenant uuid,
        attempts integer NOT NULL DEFAULT 0,
        reason text,
        received_at timestamptz NOT NULL DEFAULT now(),
        finished_at timestamptz,
        UNIQUE (kind, receiver, dedupe_key)
    )""",
    "CREATE INDEX webhook_inbox_waiting ON soko_kernel.webhook_inbox (received_at) WHERE status = 'received'",
    # -- routes: a tenant claims keys for itself only (the tenant comes from its transaction, not an argument).
    f"""CREATE FUNCTION public.soko_claim_route(p_receiver text, p_kind text, p_key text, p_exclusive boolean)
        RETURNS void LANGUAGE sql {_DEFINER} AS $$
        DELETE FROM webhook_routes WHERE p_exclusive AND receiver = p_receiver AND kind = p_kind
            AND tenant = {_TENANT} AND route_key <> p_key;
        INSERT INTO webhook_routes (receiver, kind, route_key, tenant) VALUES (p_receiver, p_kind, p_key, {_TENANT})
            ON CONFLICT DO NOTHING;
    $$""",
    f"""CREATE FUNCTION public.soko_route_tenant(p_receiver text, p_kind text, p_key text)
        RETURNS uuid LANGUAGE sql STABLE {_DEFINER} AS $$
        SELECT CASE WHEN count(DISTINCT tenant) = 1 THEN (array_agg(tenant))[1] END
        FROM webhook_routes WHERE receiver = p_receiver AND kind = p_kind AND route_key = p_key
    $$""",
    f"""CREATE FUNCTION public.soko_route_holders(p_kind text)
        RETURNS TABLE (tenant uuid, receiver text) LANGUAGE sql STABLE {_DEFINER} AS $$
        SELECT DISTINCT tenant, receiver FROM webhook_routes WHERE kind = p_kind ORDER BY 1, 2
    $$""",
    # -- inbox: add (duplicates return nothing), read, count an attempt, finish once, list the stale.
    f"""CREATE FUNCTION public.soko_inbox_add(
            p_kind text, p_receiver text, p_dedupe_key text, p_event_type text, p_event jsonb, p_path_tenant uuid)
        RETURNS TABLE (id bigint, status text) LANGUAGE sql {_DEFINER} AS $$
        WITH added AS (
            INSERT INTO webhook_inbox (kind, receiver, dedupe_key, event_type, event, path_tenant)
            VALUES (p_kind, p_receiver, p_dedupe_key, p_event_type, p_event, p_path_tenant)
            ON CONFLICT (kind, receiver, dedupe_key) DO NOTHING RETURNING id, status
        )
        SELECT id, status FROM added
        UNION ALL
        SELECT i.id, i.status FROM webhook_inbox i
        WHERE i.kind = p_kind AND i.receiver = p_receiver AND i.dedupe_key = p_dedupe_key
            AND NOT EXISTS (SELECT FROM added)
    $$""",
    f"""CREATE FUNCTION public.soko_inbox_get(p_id bigint)
        RETURNS TABLE (kind text, receiver text, event_type text, event jsonb, path_tenant uuid, status text,
                       attempts integer)
        LANGUAGE sql STABLE {_DEFINER} AS $$
        SELECT kind, receiver, event_type, event, path_tenant, status, attempts FROM webhook_inbox WHERE id = p_id
    $$""",
    f"""CREATE FUNCTION public.soko_inbox_attempt(p_id bigint)
        RETURNS integer LANGUAGE sql {_DEFINER} AS $$
        UPDATE webhook_inbox SET attempts = attempts + 1 WHERE id = p_id AND status = 'received' RETURNING attempts
    $$""",
    f"""CREATE FUNCTION public.soko_inbox_finish(p_id bigint, p_status text, p_tenant uuid, p_reason text)
        RETURNS boolean LANGUAGE sql {_DEFINER} AS $$
        UPDATE webhook_inbox SET status = p_status, tenant = p_tenant, reason = p_reason, finished_at = now()
        WHERE id = p_id AND status = 'received' AND p_status IN ('processed', 'quarantined') RETURNING true
    $$""",
    f"""CREATE FUNCTION public.soko_inbox_waiting(p_older_than_seconds double precision, p_limit integer)
        RETURNS SETOF bigint LANGUAGE sql STABLE {_DEFINER} AS $$
        SELECT id FROM webhook_inbox
        WHERE status = 'received' AND received_at < now() - make_interval(secs => p_older_than_seconds)
        ORDER BY received_at LIMIT p_limit
    $$""",
]


forwards = sql_migration(ID, "kernel", DESCRIPTION, STATEMENTS)
