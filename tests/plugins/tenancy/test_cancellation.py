"""A tenant transaction cancelled at any moment (a client hanging up) gives its connection back, clean.

In process, against the real database: tasks enter a tenant transaction and are cancelled after a growing delay,
so the cancellation lands while acquiring, during BEGIN, during set_config, inside the body and during rollback.
"""

from __future__ import annotations

import asyncio

import asyncpg

from tests.plugins.tenancy.conftest import POOL_MAX, KernelFactory, create_tenant

ATTEMPTS = 150


async def test_cancelled_tenant_transactions_never_keep_a_connection(
    make_kernel: KernelFactory, superuser: asyncpg.Connection
) -> None:
    tenant = await create_tenant(superuser, items=1)
    kernel = make_kernel()

    async def scoped_work() -> None:
        async with kernel.tenant_transaction(tenant.id) as transaction:
            await transaction.connection.execute("SELECT pg_sleep(1)")

    # A lost connection would hang the pool's close forever: fail instead.
    async with asyncio.timeout(60), kernel.running():
        assert kernel.engine is not None
        pool = kernel.engine.pool
        for attempt in range(ATTEMPTS):
            work = asyncio.create_task(scoped_work())
            await asyncio.sleep(attempt * 0.00005)  # where the cancellation lands moves a little every time
            work.cancel()
            await asyncio.wait([work])
        held = [await pool.acquire(timeout=5) for _ in range(POOL_MAX)]  # all of them back, or this times out
        try:
            states = [
                (
                    await connection.fetchval("SELECT current_setting('app.current_tenant', true)") or "",
                    connection.is_in_transaction(),
                )
                for connection in held
            ]
        finally:
            for connection in held:
                await pool.release(connection)
    assert states == [("", False)] * POOL_MAX
