"""A tenant transaction takes its pooled connection at its first statement, not when it is entered (issue 13,
item 1): work that waits on something else first holds no connection meanwhile. In process, against the real
database; the slow-body test (tests/plugins/commerce/test_slow_bodies.py) shows the effect on real servers.
"""

from __future__ import annotations

import asyncio

import asyncpg
import pytest

from tests.plugins.tenancy.conftest import KernelFactory, create_tenant

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
