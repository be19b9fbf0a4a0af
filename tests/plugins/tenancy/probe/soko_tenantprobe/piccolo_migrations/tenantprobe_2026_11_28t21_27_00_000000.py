"""Make the items table tenant-owned, with the one helper every plugin uses.

A migration of its own: piccolo runs `add_raw` before `add_table`, so the table must exist already.
"""

from piccolo.apps.migrations.auto.migration_manager import MigrationManager

from plugins.tenancy.public import make_tenant_owned

ID = "2026-11-28T21:27:00:000000"
VERSION = "1.38.0"
DESCRIPTION = "items are tenant-owned"


async def forwards() -> MigrationManager:
    manager = MigrationManager(migration_id=ID, app_name="tenantprobe", description=DESCRIPTION)
    manager.add_raw(make_tenant_owned("tenantprobe_items"))
    return manager
