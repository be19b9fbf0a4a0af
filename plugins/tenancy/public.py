"""What other plugins may use of tenancy (declare `requires = ["tenancy"]` on your plugin module).

- `make_tenant_owned(table)`: in a piccolo migration, `manager.add_raw(make_tenant_owned("orders"))`, in the
  migration after the one that creates the table. The one way to make a table tenant-owned.
- `tenant_owned(table)`: the same, as SQL statements, for other migration tools.
- `tenant_task(kernel, function)`: a task that runs in the transaction of the tenant its job carries.
- `tenant_scope(kernel, "acme")`: act as one tenant from CLI or maintenance code.
- `list_tenants()`: every tenant (id, slug, name, status), for work done per tenant (periodic jobs).
- `tenant_for_host(kernel, host)`: the tenant a host (port allowed) names, from the per-process cache, or None
  (security's CORS asks it which store a storefront origin belongs to).
- `TenantRecord`, `TenantStatus`: what a tenant is, to the rest of soko.

Inside a request or job the tenant is already bound: `kernel.tenant_id_var.get()` (`from kernel import
tenant_id_var`) is its id, and every query runs in its transaction. Nothing else here is public.
"""

from kernel import Kernel
from plugins.tenancy.directory import directory_for
from plugins.tenancy.jobs import tenant_scope, tenant_task
from plugins.tenancy.lookups import list_tenants
from plugins.tenancy.records import TenantRecord, TenantStatus
from plugins.tenancy.rls import make_tenant_owned, tenant_owned


async def tenant_for_host(kernel: Kernel, host: str) -> TenantRecord | None:
    """The tenant `host` names (a slug under a base domain or a custom domain), or None when it names none."""
    found = await directory_for(kernel).for_host(host)
    return found if isinstance(found, TenantRecord) else None


__all__ = [
    "TenantRecord",
    "TenantStatus",
    "list_tenants",
    "make_tenant_owned",
    "tenant_for_host",
    "tenant_owned",
    "tenant_scope",
    "tenant_task",
]
