"""The messaging_whatsapp plugin's piccolo app: its messages and the customers' service windows."""

from pathlib import Path

from piccolo.conf.apps import AppConfig

from plugins.messaging_whatsapp.tables import WhatsAppContact, WhatsAppMessage

APP_CONFIG = AppConfig(
    app_name="messaging_whatsapp",
    migrations_folder_path=str(Path(__file__).parent / "piccolo_migrations"),
    table_classes=[WhatsAppMessage, WhatsAppContact],
    migration_dependencies=["plugins.tenancy.piccolo_app"],
    commands=[],
)
