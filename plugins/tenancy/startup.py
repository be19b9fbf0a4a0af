"""The plugin's lifespan, in the web process and the worker alike.

Startup refuses to serve while any table with a `tenant_id` column falls short of tenant-owned (a plugin that
forgot the helper, or a hand-made table): serving it would expose every tenant's rows through that table. The
kernel's own check, before this, refuses a superuser, BYPASSRLS or table-owning app role.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from kernel import Kernel
from plugins.tenancy import changes, rls


class UnisolatedTables(RuntimeError):
    """Tables with a `tenant_id` column that row-level security does not isolate; the message names each."""


@asynccontextmanager
async def lifespan(kernel: Kernel) -> AsyncIterator[None]:
    await refuse_unisolated_tables(kernel)
    async with changes.listening(kernel):
        yield


async def refuse_unisolated_tables(kernel: Kernel) -> None:
    if kernel.engine is None:
        return
    async with kernel.engine.pool.acquire() as connection:
        audits = await rls.audit(connection)
    problems = [f"{audit.table}: {problem}" for audit in audits for problem in audit.problems]
    if problems:
        raise UnisolatedTables(
            "refusing to serve: these tables hold a tenant_id but row-level security does not isolate them "
            "(make them tenant-owned with plugins.tenancy.public.make_tenant_owned):\n  " + "\n  ".join(problems)
        )
