"""PostgreSQL through piccolo on asyncpg: the pool, tenant transactions and the role check.

Isolation lives in the database: tenant-owned tables have row-level security on `app.current_tenant`, which is
set with `set_config(..., true)`, so it lasts exactly one transaction and nothing survives on a pooled connection
(behind PgBouncer in transaction mode too).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from urllib.parse import urlsplit, urlunsplit

import asyncpg
from piccolo.engine.postgres import PostgresEngine, PostgresTransaction

from kernel import tracing
from kernel.context import tenant_id_var


class UnsafeDatabaseRole(RuntimeError):
    """The app's role would bypass row-level security; serving on it could leak one tenant's data to another."""


class ServiceUnavailable(RuntimeError):
    """A server soko needs is not configured or cannot be reached; the message names the setting, in one line."""

    def __init__(self, setting: str, reason: str) -> None:
        self.setting = setting
        super().__init__(f"{reason} ({setting}); is it running? `make run` (soko dev) starts embedded ones")


# What asyncpg raises for a server that is down, a socket that is gone, or a database or role that is missing.
UNREACHABLE = (OSError, TimeoutError, asyncpg.PostgresError, asyncpg.InterfaceError)


async def start_pool(engine: PostgresEngine, setting: str, *, min_size: int, max_size: int) -> None:
    """Start `engine`'s pool; a server that cannot be reached is a `ServiceUnavailable` naming `setting`."""
    try:
        await engine.start_connection_pool(min_size=min_size, max_size=max_size, **tracing.pool_options(engine.config))
    except asyncpg.InvalidAuthorizationSpecificationError as error:
        raise ServiceUnavailable(setting, f"the database refused the role ({error}); has `soko migrate` run?") from None
    except UNREACHABLE as error:
        raise ServiceUnavailable(setting, f"cannot reach the database: {type(error).__name__}: {error}") from None


class NoTenant(RuntimeError):
    """Tenant-scoped work was attempted with no tenant bound: refusing beats running unscoped."""


class _Engine(PostgresEngine):
    """piccolo's engine without the version check its constructor runs: that connects (I/O while the kernel is
    only being built) and prints a coloured warning when the role does not exist yet, as before the first
    `soko migrate`. Reaching the server is checked where the pool starts, with an error naming the setting."""

    async def check_version(self) -> None:
        return None


def create_engine(url: str) -> PostgresEngine:
    """An engine for `url`; building it does no I/O, the pool starts in the lifespan."""
    return _Engine(config={"dsn": url}, extensions=())


class _ReleasingTransaction(PostgresTransaction):
    """piccolo's transaction, except that its connection always goes back to the pool.

    piccolo's `__aenter__` keeps the connection it acquired when BEGIN is interrupted (a client that hangs up
    cancels its request's task), and its `__aexit__` skips the release when the rollback fails: either way the
    connection is lost to the pool, idle in transaction. asyncpg's release rolls back and resets whatever it gets.
    """

    __slots__ = ()

    async def __aenter__(self) -> PostgresTransaction:
        self.connection = await self.get_connection()
        try:
            self.transaction = self.connection.transaction()
            await self.begin()
        except BaseException:
            await self._give_back()
            raise
        self.context = self.engine.current_transaction.set(self)
        return self

    async def __aexit__(self, exception_type: object, exception: BaseException | None, traceback: object) -> bool:
        try:
            if exception is not None and not self._rolled_back:
                await self.rollback()
            elif exception is None and not (self._committed or self._rolled_back):
                await self.commit()
        finally:
            self.engine.current_transaction.reset(self.context)
            await self._give_back()
        return exception is None

    async def _give_back(self) -> None:
        if self.engine.pool:
            await self.engine.pool.release(self.connection)
        else:
            await self.connection.close()


@asynccontextmanager
async def tenant_transaction(
    engine: PostgresEngine, tenant_id: str | None = None
) -> AsyncIterator[PostgresTransaction]:
    """One transaction on one pooled connection, scoped to a tenant (the bound one when not given).

    Refuses to nest: piccolo's nested transactions are not savepoints, and a nested call for another tenant would
    silently re-scope the outer one.
    """
    tenant = tenant_id if tenant_id is not None else tenant_id_var.get()
    if not tenant:
        raise NoTenant("no tenant is bound: pass tenant_id or run inside a tenant's request or job")
    async with _ReleasingTransaction(engine, allow_nested=False) as transaction:
        await transaction.connection.execute("SELECT set_config('app.current_tenant', $1, true)", str(tenant))
        token = tenant_id_var.set(str(tenant))
        try:
            yield transaction
        finally:
            tenant_id_var.reset(token)


async def check_role(engine: PostgresEngine) -> None:
    """Refuse a superuser or BYPASSRLS role: row-level security never applies to them. Refuse an owner (or a
    member of the owner's role) of a table with row-level security too: it could switch it off."""
    async with engine.pool.acquire() as connection:
        role = await connection.fetchrow(
            "SELECT rolname, rolsuper, rolbypassrls FROM pg_roles WHERE rolname = current_user"
        )
        owned = await connection.fetchval(
            "SELECT string_agg(oid::regclass::text, ', ' ORDER BY oid::regclass::text) FROM pg_class "
            "WHERE relrowsecurity AND pg_has_role(current_user, relowner, 'MEMBER')"
        )
    fix = "point SOKO_DATABASE_URL at the app role that `soko migrate` creates"
    if role["rolsuper"] or role["rolbypassrls"]:
        power = "SUPERUSER" if role["rolsuper"] else "BYPASSRLS"
        raise UnsafeDatabaseRole(
            f"database role {role['rolname']!r} is {power}, so row-level security would not apply; {fix}"
        )
    if owned:
        raise UnsafeDatabaseRole(
            f"database role {role['rolname']!r} owns tables with row-level security ({owned}) and could switch "
            f"it off; {fix}, and let the owner role that runs migrations own the tables"
        )


def with_credentials(url: str, *, user: str, password: str | None = None, database: str | None = None) -> str:
    """The same server URL with another role and/or database (TCP and unix-socket forms alike)."""
    parts = urlsplit(url)
    host = parts.netloc.rpartition("@")[2]
    login = user if password is None else f"{user}:{password}"
    path = f"/{database}" if database is not None else parts.path
    return urlunsplit((parts.scheme, f"{login}@{host}", path, parts.query, parts.fragment))
