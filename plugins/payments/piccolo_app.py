"""The payments plugin's piccolo app: its migrations (queries are SQL, see `intents`)."""

from pathlib import Path

from piccolo.conf.apps import AppConfig

APP_CONFIG = AppConfig(
    app_name="payments",
    migrations_folder_path=str(Path(__file__).parent / "piccolo_migrations"),
    table_classes=[],
    migration_dependencies=["plugins.tenancy.piccolo_app", "plugins.commerce.piccolo_app"],
    commands=[],
)
