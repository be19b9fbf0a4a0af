"""A tenant transaction takes its pooled connection at its first statement, not when it is entered (issue 13,
item 1): work that waits on something else first holds no connection meanwhile. In process, against the real
database; the slow-body test (tests/plugins/commerce/test_slow_bodies.py) shows the effect on real servers.
"""

from __future__ import annotations

import asyncio
from contextlib import nullcontext as _no_error

import asyncpg
import pytest

from tests.plugins.tenancy.conftest import POOL_MAX, KernelFactory, create_tenant

TENANT_SETTING = "SELECT current_setting('app.current_tenant', true)"


async def test_the_connection_is_taken_at_the_first_statement_and_given_back_at_the_end(
    make_kernel: KernelFactory, superuser: asyncpg.Connection
) -> None:
    tenant = await create_tenant(superuser, items=1)
    kernel = make_kernel()
    async with kernel.running():
        assert kernel.engine is not None
        pool = kernel.engine.pool

        def held() -> int:
            return pool.get_size() - pool.get_idle_size()

        async with kernel.tenant_transaction(tenant.id):
            before = held()
            await asyncio.sleep(0)  # whatever the work awaits first
            first = [await kernel.connection().fetchval(TENANT_SETTING) for _ in range(2)]
            during = held()
            connection = kernel.connection()
            in_transaction = connection.is_in_transaction()
        after = held()
        async with kernel.tenant_transaction(tenant.id):
            pass  # no statement at all: nothing taken, nothing to commit
        untouched = held()
    assert (before, during, after, untouched) == (0, 1, 0, 0)
    assert first == [tenant.id] * 2  # both statements on the one connection, in the tenant's transaction
    assert in_transaction


async def test_a_statement_after_the_end_does_not_open_a_new_transaction(
    make_kernel: KernelFactory, superuser: asyncpg.Connection
) -> None:
    tenant = await create_tenant(superuser, items=1)
    kernel = make_kernel()
    async with kernel.running():
        async with kernel.tenant_transaction(tenant.id):
            outlived = kernel.connection()  # e.g. captured by a task that outlives its request
        with pytest.raises(RuntimeError, match="has ended"):
            await outlived.fetchval(TENANT_SETTING)


async def test_a_tenant_transaction_makes_two_round_trips_of_its_own_and_the_release_none(
    make_kernel: KernelFactory, superuser: asyncpg.Connection
) -> None:
    """BEGIN with set_config in one, COMMIT with the pool's session reset in the other (kernel/db.py)."""
    tenant = await create_tenant(superuser, items=1)
    kernel = make_kernel()
    sent: list[str] = []
    async with kernel.running():
        assert kernel.engine is not None
        async with kernel.tenant_transaction(tenant.id):
            connection = kernel.connection()
            await connection.fetchval("SELECT 1")  # opens the transaction: the logger is added after its BEGIN
            connection.add_query_logger(lambda record: sent.append(record.query))  # called soon after, in order
            await connection.fetchval("SELECT 2")
        async with kernel.tenant_transaction(tenant.id):
            await kernel.connection().fetchval("SELECT 3")
    reset = "SELECT pg_advisory_unlock_all()"
    assert sent[0] == "SELECT 2"
    assert sent[1].startswith("COMMIT;") and reset in sent[1]
    assert sent[2].startswith("BEGIN;SELECT set_config('app.current_tenant'")  # the same connection, taken again
    assert not any(query.startswith(reset) for query in sent)  # no reset of its own on release


@pytest.mark.parametrize("ending", ["commit", "error"])
async def test_session_state_a_tenant_transaction_leaves_is_reset_before_the_next_user(
    make_kernel: KernelFactory, superuser: asyncpg.Connection, ending: str
) -> None:
    """The reset rides on the COMMIT or ROLLBACK now, so it must still undo what a view left on the session."""
    tenant = await create_tenant(superuser, items=1)
    kernel = make_kernel()
    async with kernel.running():
        assert kernel.engine is not None
        pool = kernel.engine.pool
        with pytest.raises(LookupError) if ending == "error" else _no_error():
            async with kernel.tenant_transaction(tenant.id):
                connection = kernel.connection()
                await connection.execute("SET application_name = 'left-behind'")  # session-wide, not LOCAL
                await connection.execute("SELECT pg_advisory_lock(4242)")
                if ending == "error":
                    raise LookupError("the view failed")
        held = [await pool.acquire(timeout=5) for _ in range(POOL_MAX)]
        try:
            names = {await held_one.fetchval("SHOW application_name") for held_one in held}
            locks = await superuser.fetchval("SELECT count(*) FROM pg_locks WHERE locktype = 'advisory'")
        finally:
            for held_one in held:
                await pool.release(held_one)
    assert "left-behind" not in names
    assert locks == 0
