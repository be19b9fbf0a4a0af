"""The auth plugin's piccolo app: customers, codes, refresh tokens, staff and their sessions."""

from pathlib import Path

from piccolo.conf.apps import AppConfig

from plugins.auth.tables import TABLES

APP_CONFIG = AppConfig(
    app_name="auth",
    migrations_folder_path=str(Path(__file__).parent / "piccolo_migrations"),
    table_classes=list(TABLES),
    migration_dependencies=["plugins.tenancy.piccolo_app"],
    commands=[],
)
