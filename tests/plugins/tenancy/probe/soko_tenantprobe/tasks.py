from soko_tenantprobe.tables import Item


async def add_item(body: str) -> None:
    """Registered through tenant_task: runs in the transaction of the tenant its job carries."""
    await Item.insert(Item(body=body))
