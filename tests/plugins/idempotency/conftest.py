"""The idempotency tests use the commerce fixtures: checkout is the covered route with a real business effect."""

from tests.plugins.commerce.conftest import new_store, shop, shop_database, superuser

__all__ = ["new_store", "shop", "shop_database", "superuser"]
