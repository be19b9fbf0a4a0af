"""Jobs carry their tenant and run in its transaction in a real worker; a job without one fails loudly.
Maintenance code acts as a tenant through `tenant_scope`."""

from __future__ import annotations

import asyncpg
import httpx
import pytest

from kernel import NoTenant
from kernel.testing.project import Project, eventually
from plugins.tenancy.public import TenantStatus, list_tenants, tenant_scope
from tests.plugins.tenancy.conftest import KernelFactory, create_tenant


async def test_jobs_run_as_the_tenant_they_carry_and_never_without_one(
    project: Project, superuser: asyncpg.Connection, make_kernel: KernelFactory
) -> None:
    from soko_tenantprobe.tables import Item  # importable once make_kernel put the probe on sys.path

    from_request = await create_tenant(superuser, items=1)
    from_scope = await create_tenant(superuser, items=1)
    kernel = make_kernel()
    with project.worker() as worker, project.serve() as server:
        async with httpx.AsyncClient(base_url=server.base_url) as http:
            enqueued = await http.post(
                "/probe/jobs", params={"body": f"{from_request.slug}-job"}, headers={"Host": from_request.host}
            )
            assert enqueued.status_code == 202, enqueued.text
        async with kernel.running():
            async with tenant_scope(kernel, from_scope.slug) as tenant:
                assert tenant.id == from_scope.id
                seen = await Item.raw("SELECT tenant_id::text AS tenant_id FROM tenantprobe_items")
                assert {row["tenant_id"] for row in seen} == {from_scope.id}
                await kernel.task("tenantprobe.add_item").kiq(f"{from_scope.slug}-job")
            await kernel.task("tenantprobe.add_item").kiq("orphan-job")  # enqueued with no tenant bound

        async def written() -> dict[str, str]:
            rows = await superuser.fetch(
                "SELECT body, tenant_id::text AS tenant_id FROM tenantprobe_items"
                " WHERE body LIKE '%-job' AND tenant_id = ANY($1::uuid[])",
                [from_request.id, from_scope.id],
            )
            return {row["body"]: row["tenant_id"] for row in rows} if len(rows) == 2 else {}

        jobs = await eventually(written, timeout=20, what="both tenant jobs to write their rows")

        def refused() -> list[dict[str, object]]:
            return [record for record in worker.log_records() if "carries no tenant" in str(record.get("exc", ""))]

        await eventually(refused, timeout=20, what="the worker to refuse the job without a tenant")

    assert jobs == {f"{from_request.slug}-job": from_request.id, f"{from_scope.slug}-job": from_scope.id}
    assert await superuser.fetchval("SELECT count(*) FROM tenantprobe_items WHERE body = 'orphan-job'") == 0
    assert "NoTenant" in str(refused()[0]["exc"])


async def test_tenant_scope_needs_a_tenant_that_exists(make_kernel: KernelFactory) -> None:
    kernel = make_kernel()
    async with kernel.running():
        with pytest.raises(LookupError, match="no tenant has the id or slug 'no-such-store'"):
            async with tenant_scope(kernel, "no-such-store"):
                pass
        with pytest.raises(NoTenant):
            async with kernel.tenant_transaction():
                pass


async def test_list_tenants_serves_work_done_per_tenant(
    make_kernel: KernelFactory, superuser: asyncpg.Connection
) -> None:
    active = await create_tenant(superuser)
    suspended = await create_tenant(superuser, status="suspended")
    kernel = make_kernel()
    async with kernel.running():
        listed = {tenant.id: tenant.status for tenant in await list_tenants()}
        async with tenant_scope(kernel, active.slug):
            inside = [tenant.id for tenant in await list_tenants()]
    assert (listed[active.id], listed[suspended.id]) == (TenantStatus.ACTIVE, TenantStatus.SUSPENDED)
    assert inside == [active.id]  # in a tenant's transaction the registry shows that tenant only
