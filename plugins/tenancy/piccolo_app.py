"""The tenancy plugin's piccolo app: the tenant registry's tables and their migrations."""

from pathlib import Path

from piccolo.conf.apps import AppConfig

from plugins.tenancy.tables import Tenant, TenantDomain

APP_CONFIG = AppConfig(
    app_name="tenancy",
    migrations_folder_path=str(Path(__file__).parent / "piccolo_migrations"),
    table_classes=[Tenant, TenantDomain],
    migration_dependencies=["kernel.piccolo_app"],
    commands=[],
)
