"""The tenant registry's tables. Not tenant-owned: resolution reads them before any tenant is known.

Row-level security still guards them (see the migrations): with no tenant bound, the app role reads every row
(resolution); inside a tenant's transaction it sees its own tenant only. It writes them only through the
registry's SECURITY DEFINER functions (registry.py), so no other statement can rename, suspend or re-point a store.
"""

from piccolo.columns import UUID, ForeignKey, OnDelete, Timestamptz, Varchar
from piccolo.table import Table

from plugins.tenancy.records import TenantStatus


class Tenant(Table, tablename="tenants"):
    id = UUID(primary_key=True)
    slug = Varchar(length=63, unique=True)
    name = Varchar(length=200)
    status = Varchar(length=16, choices=TenantStatus, default=TenantStatus.ACTIVE)
    created_at = Timestamptz()


class TenantDomain(Table, tablename="tenant_domains"):
    domain = Varchar(length=253, primary_key=True)
    tenant = ForeignKey(references=Tenant, null=False, on_delete=OnDelete.cascade, index=True)
    created_at = Timestamptz()
