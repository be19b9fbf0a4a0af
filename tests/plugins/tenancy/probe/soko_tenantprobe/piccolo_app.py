from pathlib import Path

from piccolo.conf.apps import AppConfig

from soko_tenantprobe.tables import Item

APP_CONFIG = AppConfig(
    app_name="tenantprobe",
    migrations_folder_path=str(Path(__file__).parent / "piccolo_migrations"),
    table_classes=[Item],
    migration_dependencies=["kernel.piccolo_app"],
    commands=[],
)
