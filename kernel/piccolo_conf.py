"""What piccolo's own machinery reads (PICCOLO_CONF): the owner engine and the apps of the enabled plugins.

Only `soko migrate` uses it; the web process and the worker bind their tables to the app role's engine.
"""

from piccolo.conf.apps import AppRegistry

from kernel import db, migrations
from kernel.kernel import build_kernel

_kernel = build_kernel()
_owner = _kernel.settings.database_owner_url or _kernel.settings.database_url
if _owner is None:
    raise RuntimeError("set SOKO_DATABASE_OWNER_URL (the role that owns the tables) to run migrations")

DB = db.create_engine(_owner.get_secret_value())
APP_REGISTRY = AppRegistry(apps=migrations.app_paths(_kernel))
