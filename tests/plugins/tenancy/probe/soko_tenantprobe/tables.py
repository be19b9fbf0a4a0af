from piccolo.columns import Text
from piccolo.table import Table


class Item(Table, tablename="tenantprobe_items"):
    """Tenant-owned (second migration): no tenant_id here, the database fills it from the transaction."""

    body = Text()
