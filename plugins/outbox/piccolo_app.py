"""The outbox plugin's piccolo app: the table of messages kept instead of sent."""

from pathlib import Path

from piccolo.conf.apps import AppConfig

from plugins.outbox.tables import OutboxMessage

APP_CONFIG = AppConfig(
    app_name="outbox",
    migrations_folder_path=str(Path(__file__).parent / "piccolo_migrations"),
    table_classes=[OutboxMessage],
    migration_dependencies=["plugins.tenancy.piccolo_app"],
    commands=[],
)
