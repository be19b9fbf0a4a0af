"""The webhook inbox leases a row to the job that processes it.

One event may be enqueued several times (a provider sends it to two web processes at once, the sweep finds it
waiting): without a lease, every job that found the row waiting counted an attempt, so five concurrent duplicate
deliveries could exhaust `webhook_max_attempts` and quarantine an event that was being applied. Now a job
claims the row for `p_lease_seconds`; a job that finds it claimed does nothing, and the sweep skips it until the
lease runs out (a worker killed mid-event leaves it for the next sweep after that).
"""

# ruff: noqa: S608 - the SQL below is built from this module's constants only

from kernel.sql_migrations import sql_migration

ID = "2026-12-03T07:00:00:000000"
VERSION = "1.38.0"
DESCRIPTION = "webhook inbox leases"

_DEFINER = "SECURITY DEFINER SET search_path = soko_kernel, pg_temp"

STATEMENTS = [
    "ALTER TABLE soko_kernel.webhook_inbox ADD COLUMN leased_until timestamptz",
    "DROP FUNCTION public.soko_inbox_attempt(bigint)",
    f"""CREATE FUNCTION public.soko_inbox_claim(p_id bigint, p_lease_seconds double precision)
        RETURNS integer LANGUAGE sql {_DEFINER} AS $$
        UPDATE webhook_inbox SET attempts = attempts + 1, leased_until = now() + make_interval(secs => p_lease_seconds)
        WHERE id = p_id AND status = 'received' AND (leased_until IS NULL OR leased_until <= now())
        RETURNING attempts
    $$""",
    f"""CREATE OR REPLACE FUNCTION public.soko_inbox_waiting(p_older_than_seconds double precision, p_limit integer)
        RETURNS SETOF bigint LANGUAGE sql STABLE {_DEFINER} AS $$
        SELECT id FROM webhook_inbox
        WHERE status = 'received' AND received_at < now() - make_interval(secs => p_older_than_seconds)
            AND (leased_until IS NULL OR leased_until <= now())
        ORDER BY received_at LIMIT p_limit
    $$""",
]


forwards = sql_migration(ID, "kernel", DESCRIPTION, STATEMENTS)
