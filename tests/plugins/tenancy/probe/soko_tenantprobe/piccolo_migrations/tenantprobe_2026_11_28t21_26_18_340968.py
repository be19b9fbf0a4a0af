"""Create the items table, as piccolo's auto-migration wrote it."""

from piccolo.apps.migrations.auto.migration_manager import MigrationManager
from piccolo.columns.column_types import Text
from piccolo.columns.indexes import IndexMethod

ID = "2026-11-28T21:26:18:340968"
VERSION = "1.38.0"
DESCRIPTION = "the items table"


async def forwards():
    manager = MigrationManager(migration_id=ID, app_name="tenantprobe", description=DESCRIPTION)

    manager.add_table(
        class_name="Item",
        tablename="tenantprobe_items",
        schema=None,
        columns=None,
    )

    manager.add_column(
        table_class_name="Item",
        tablename="tenantprobe_items",
        column_name="body",
        db_column_name="body",
        column_class_name="Text",
        column_class=Text,
        params={
            "default": "",
            "null": False,
            "primary_key": False,
            "unique": False,
            "index": False,
            "index_method": IndexMethod.btree,
            "choices": None,
            "db_column_name": None,
            "secret": False,
        },
        schema=None,
    )

    return manager
