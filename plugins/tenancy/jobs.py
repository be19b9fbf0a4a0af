"""Tenant scope outside requests: jobs, and the explicit scope for CLI and maintenance code.

A worker has no Host header. A job carries its tenant in its labels (the kernel copies the bound tenant when it
is enqueued and binds it again in the worker); `tenant_task` runs the job in that tenant's own transaction and
refuses a job that carries none, rather than letting it run unscoped.
"""

from __future__ import annotations

import functools
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import ParamSpec, TypeVar

from kernel import Kernel, NoTenant, tenant_id_var
from plugins.tenancy import lookups
from plugins.tenancy.records import TenantRecord

P = ParamSpec("P")
R = TypeVar("R")


def tenant_task(kernel: Kernel, function: Callable[P, Awaitable[R]]) -> Callable[P, Awaitable[R]]:
    """Wrap a task so it runs in the transaction of the tenant its job carries:

        @hookimpl
        def register_tasks(kernel):
            return {"recount": tenant_task(kernel, tasks.recount)}

    A job enqueued with no tenant bound fails with NoTenant, loudly, in the worker's log. Commit happens when the
    task returns; an exception rolls its writes back (and taskiq's retry, if any, starts afresh).
    """

    @functools.wraps(function)
    async def in_tenant_transaction(*args: P.args, **kwargs: P.kwargs) -> R:
        if tenant_id_var.get() is None:
            raise NoTenant(
                f"job {function.__qualname__} carries no tenant: enqueue it from a tenant's request, job or "
                "tenant_scope(); it was not run"
            )
        async with kernel.tenant_transaction():
            return await function(*args, **kwargs)

    return in_tenant_transaction


@asynccontextmanager
async def tenant_scope(kernel: Kernel, tenant: str) -> AsyncIterator[TenantRecord]:
    """Act as one tenant (id or slug) from a CLI command or maintenance script:

        async with kernel.running(), tenant_scope(kernel, "acme"):
            await Order.select()                      # only acme's rows, in one transaction
            await kernel.task("commerce.reindex").kiq()  # the job carries acme

    Suspended tenants are in scope too: maintenance (an export, a clean-up) is exactly what they may need.
    """
    record = await lookups.tenant_by_ref(tenant)
    if record is None:
        raise LookupError(f"no tenant has the id or slug {tenant!r}")
    async with kernel.tenant_transaction(record.id):
        yield record
