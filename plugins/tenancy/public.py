"""What other plugins may use of tenancy (declare `requires = ["tenancy"]` on your plugin module).

- `make_tenant_owned(table)`: in a piccolo migration, `manager.add_raw(make_tenant_owned("orders"))`, in the
  migration after the one that creates the table. The one way to make a table tenant-owned.
- `tenant_owned(table)`: the same, as SQL statements, for other migration tools.
- `tenant_task(kernel, function)`: a task that runs in the transaction of the tenant its job carries.
- `tenant_scope(kernel, "acme")`: act as one tenant from CLI or maintenance code.
- `list_tenants()`: every tenant (id, slug, name, status), for work done per tenant (periodic jobs).
- `TenantRecord`, `TenantStatus`: what a tenant is, to the rest of soko.

Inside a request or job the tenant is already bound: `kernel.tenant_id_var.get()` (`from kernel import
tenant_id_var`) is its id, and every query runs in its transaction. Nothing else here is public.
"""

from plugins.tenancy.jobs import tenant_scope, tenant_task
from plugins.tenancy.lookups import list_tenants
from plugins.tenancy.records import TenantRecord, TenantStatus
from plugins.tenancy.rls import make_tenant_owned, tenant_owned

__all__ = [
    "TenantRecord",
    "TenantStatus",
    "list_tenants",
    "make_tenant_owned",
    "tenant_owned",
    "tenant_scope",
    "tenant_task",
]
