"""PostgreSQL through piccolo on asyncpg: the pool, tenant transactions and the role check.

Isolation lives in the database: tenant-owned tables have row-level security on `app.current_tenant`, which is
set with `set_config(..., true)`, so it lasts exactly one transaction and nothing survives on a pooled connection
(behind PgBouncer in transaction mode too). A tenant transaction takes its connection at its first statement.

Round trips are the cost of a short request's transaction, so a tenant transaction makes two of its own: BEGIN
with `set_config` in one, and COMMIT (or ROLLBACK) with the pool's session reset in the other, after which the
release sends nothing (`ResettableConnection`). Written out, the same work is four: BEGIN, `set_config`, COMMIT
and asyncpg's reset on release.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
import re
import time
from typing import Any
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
# What a request meets while the database is away (down, restarting, refusing connections), as opposed to its own
# query's error: it is answered 503 `service_unavailable`, never 500 (`kernel.app`).
OUTAGE = (
    OSError,
    TimeoutError,
    ServiceUnavailable,
    asyncpg.PostgresConnectionError,
    asyncpg.CannotConnectNowError,
    asyncpg.AdminShutdownError,
    asyncpg.CrashShutdownError,
    asyncpg.TooManyConnectionsError,
)


def is_outage(error: BaseException) -> bool:
    """Whether `error` (or what it was raised from) says the database is unreachable."""
    return isinstance(error, OUTAGE) or (error.__cause__ is not None and isinstance(error.__cause__, OUTAGE))


class _QuietPoolRetries(logging.Filter):
    """asyncpg's pool logs a warning with a traceback each time it fails to reconnect up to its minimum size,
    every second or so while the database is down; let one through per interval, as one line."""

    def __init__(self, interval: float) -> None:
        super().__init__()
        self._interval = interval
        self._next = 0.0

    def filter(self, record: logging.LogRecord) -> bool:
        if record.exc_info is None or record.exc_info[1] is None:
            return True
        now = time.monotonic()
        if now < self._next:
            return False
        self._next = now + self._interval
        error = record.exc_info[1]
        record.msg, record.args = f"{record.getMessage()} ({type(error).__name__}: {error})", ()
        record.exc_info = record.exc_text = None
        return True


POOL_RETRY_LOG_INTERVAL_S = 10.0
_POOL_LOG = logging.getLogger("asyncpg.pool")


class ResettableConnection(asyncpg.Connection):
    """asyncpg's connection, able to carry the session reset in the round trip that ends its last transaction.

    The pool resets every connection it gets back (rolls back, closes cursors, drops LISTENs and advisory locks,
    `RESET ALL`), one round trip of its own. A tenant transaction sends that reset with its COMMIT or ROLLBACK
    and says so here; the release then sends nothing. Any other use of a connection is reset on release as usual.
    """

    __slots__ = ("_reset_sent",)

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._reset_sent = False

    async def end_transaction(self, command: str) -> None:
        """Run `command` (COMMIT or ROLLBACK) and the session reset in one round trip; the release resets no more.

        Only as the last statement before the connection goes back: anything run after it would not be reset."""
        reset = self.get_reset_query()
        await self.execute(f"{command};{reset}" if reset else command)
        self._reset_sent = True

    async def reset_on_release(self) -> None:
        """The pool's reset (asyncpg has rolled back any open transaction before it): the reset query, unless the
        transaction that just ended sent it."""
        if self._reset_sent:
            self._reset_sent = False
            return
        reset = self.get_reset_query()
        if reset:
            await self.execute(reset)


async def start_pool(engine: PostgresEngine, setting: str, *, min_size: int, max_size: int) -> None:
    """Start `engine`'s pool; a server that cannot be reached is a `ServiceUnavailable` naming `setting`."""
    if not any(isinstance(known, _QuietPoolRetries) for known in _POOL_LOG.filters):
        _POOL_LOG.addFilter(_QuietPoolRetries(POOL_RETRY_LOG_INTERVAL_S))
    try:
        await engine.start_connection_pool(
            min_size=min_size,
            max_size=max_size,
            connection_class=ResettableConnection,
            reset=ResettableConnection.reset_on_release,
            **tracing.pool_options(engine.config),
        )
    except asyncpg.InvalidAuthorizationSpecificationError as error:
        raise ServiceUnavailable(setting, f"the database refused the role ({error}); has `soko migrate` run?") from None
    except UNREACHABLE as error:
        raise ServiceUnavailable(setting, f"cannot reach the database: {type(error).__name__}: {error}") from None


class NoTenant(RuntimeError):
    """Tenant-scoped work was attempted with no tenant bound: refusing beats running unscoped."""


# A tenant id goes into the statement that sets it (`_LazyTransaction.open`), so it must be a bare id (a UUID).
_TENANT_ID = re.compile(r"[0-9A-Za-z_-]{1,64}")


class _Engine(PostgresEngine):
    """piccolo's engine without the version check its constructor runs: that connects (I/O while the kernel is
    only being built) and prints a coloured warning when the role does not exist yet, as before the first
    `soko migrate`. Reaching the server is checked where the pool starts, with an error naming the setting."""

    async def check_version(self) -> None:
        return None


def create_engine(url: str, *, pooled: bool = False) -> PostgresEngine:
    """An engine for `url`; building it does no I/O, the pool starts in the lifespan.

    `pooled`: `url` is a pooler in transaction mode (PgBouncer), which hands each transaction whichever server
    connection is free, so a statement asyncpg prepared by name on one may be missing on the next (or clash with
    another client's). asyncpg then prepares every statement unnamed, in the round trip that runs it."""
    config: dict[str, object] = {"dsn": url}
    if pooled:
        config["statement_cache_size"] = 0
    return _Engine(config=config, extensions=())


class _LazyConnection:
    """The connection of a `_LazyTransaction`, standing in until the first statement needs the real one.

    Every coroutine method of asyncpg's Connection (`fetch`, `execute`, ... and piccolo's queries, which call
    `fetch`) first opens the transaction; anything else is read from the open connection.
    """

    __slots__ = ("_transaction",)

    def __init__(self, transaction: _LazyTransaction) -> None:
        self._transaction = transaction

    def __getattr__(self, name: str) -> Any:
        if not inspect.iscoroutinefunction(getattr(asyncpg.Connection, name, None)):
            return getattr(self._transaction.opened(), name)

        async def on_open_connection(*args: Any, **kwargs: Any) -> Any:
            connection = await self._transaction.open()
            return await getattr(connection, name)(*args, **kwargs)

        return on_open_connection


class _LazyTransaction(PostgresTransaction):
    """A tenant's transaction that takes its pooled connection only when its first statement runs.

    Entering it does no I/O, so a view that answers without the database, or waits on something else first (a
    provider's API), holds no connection meanwhile. The first statement acquires one, runs BEGIN and sets
    `app.current_tenant` for this transaction only (`set_config(..., true)`) in one round trip, then runs. The
    exit's COMMIT or ROLLBACK carries the pool's session reset (`ResettableConnection`). On every exit (commit,
    rollback, an exception, a cancelled task) an acquired connection goes back to the pool: piccolo's own
    transaction keeps it when BEGIN is interrupted, and skips the release when the rollback fails. asyncpg's
    release rolls back and resets whatever comes back unreset.
    """

    __slots__ = ("_bound", "_ended", "_opened", "_opening", "_tenant")

    def __init__(self, engine: PostgresEngine, tenant: str) -> None:
        if not _TENANT_ID.fullmatch(tenant):
            raise NoTenant(f"{tenant[:80]!r} is not a tenant id (letters, digits, '-' and '_', at most 64)")
        super().__init__(engine, allow_nested=False)
        self._tenant = tenant
        self._opened: asyncpg.Connection | None = None
        self._opening = asyncio.Lock()
        self._ended = False
        self.connection = _LazyConnection(self)

    async def __aenter__(self) -> PostgresTransaction:
        self.context = self.engine.current_transaction.set(self)
        self._bound = tenant_id_var.set(self._tenant)
        return self

    def opened(self) -> asyncpg.Connection:
        if self._opened is None:
            raise RuntimeError("the transaction has run no statement yet, so it has no connection")
        return self._opened

    async def open(self) -> asyncpg.Connection:
        """The transaction's connection, in its transaction with the tenant set; acquired on the first call."""
        if self._opened is not None:
            return self._opened
        async with self._opening:  # two statements started at once must not take two connections
            if self._ended:  # a statement after the end (a task that outlived its request) must not start another
                raise RuntimeError("this tenant transaction has ended; open a new one")
            if self._opened is None:
                connection = await self.get_connection()
                try:
                    # One round trip: the simple protocol runs both, so the id is written in (checked as bare).
                    await connection.execute(f"BEGIN;SELECT set_config('app.current_tenant', '{self._tenant}', true)")
                    if self._ended:  # the transaction ended while this statement was connecting
                        raise RuntimeError("this tenant transaction has ended; open a new one")
                except BaseException:
                    await _give_back(self.engine, connection)
                    raise
                self._opened = connection
                self.connection = connection  # later statements (piccolo's among them) go straight to it
        return self._opened

    async def commit(self) -> None:
        if self._opened is not None:
            await self._opened.execute("COMMIT")
        self._committed = True

    async def rollback(self) -> None:
        if self._opened is not None:
            await self._opened.execute("ROLLBACK")
        self._rolled_back = True

    async def savepoint(self, name: str | None = None) -> Any:
        await self.open()
        return await super().savepoint(name)

    async def __aexit__(self, exception_type: object, exception: BaseException | None, traceback: object) -> bool:
        try:
            if exception is not None and not self._rolled_back:
                await self._end("ROLLBACK")
                self._rolled_back = True
            elif exception is None and not (self._committed or self._rolled_back):
                await self._end("COMMIT")
                self._committed = True
        finally:
            self._ended = True
            tenant_id_var.reset(self._bound)
            self.engine.current_transaction.reset(self.context)
            if self._opened is not None:
                await _give_back(self.engine, self._opened)
        return exception is None

    async def _end(self, command: str) -> None:
        """COMMIT or ROLLBACK as the transaction exits, with the pool's reset in the same round trip."""
        if self._opened is not None:
            await self._opened.end_transaction(command)


async def _give_back(engine: PostgresEngine, connection: asyncpg.Connection) -> None:
    """Return `connection` to the pool, even when the task is cancelled again meanwhile."""
    if engine.pool:
        await asyncio.shield(engine.pool.release(connection))
    else:
        await asyncio.shield(connection.close())


def tenant_transaction(engine: PostgresEngine, tenant_id: str | None = None) -> PostgresTransaction:
    """One transaction on one pooled connection, scoped to a tenant (the bound one when not given) and binding
    it while open; the connection is taken at the first statement (`_LazyTransaction`). Use with `async with`.

    Refuses to nest: piccolo's nested transactions are not savepoints, and a nested call for another tenant would
    silently re-scope the outer one.
    """
    tenant = tenant_id if tenant_id is not None else tenant_id_var.get()
    if not tenant:
        raise NoTenant("no tenant is bound: pass tenant_id or run inside a tenant's request or job")
    return _LazyTransaction(engine, str(tenant))


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
