"""The outbox tests reuse the auth tests' database, tenants and server (the outbox is where codes go)."""

from tests.plugins.auth.conftest import auth_database, other_tenant, project, server, superuser, tenant

__all__ = ["auth_database", "other_tenant", "project", "server", "superuser", "tenant"]
