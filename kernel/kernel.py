"""The kernel: settings, plugins and what they contributed, wired together without doing any I/O.

The web app, the worker, the CLI and the tests all build one with `build_kernel`; I/O starts only in `running()`.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Callable, Iterable
from contextlib import AbstractAsyncContextManager, AsyncExitStack, asynccontextmanager
from functools import partial
from typing import Any, TypeVar

import pluggy
from piccolo.engine.postgres import PostgresEngine
from pydantic import BaseModel, ValidationError
from redis.exceptions import RedisError
from taskiq import AsyncBroker, AsyncTaskiqDecoratedTask

from kernel import db, fields, inbox, migrations, plugins, webhook_tokens
from kernel.credentials import CredentialStore
from kernel.file_secrets import drop_empty_secrets, secrets_in_files
from kernel.local_secrets import local_secret
from kernel.messaging import MessagingChannel
from kernel.payments import PaymentProvider
from kernel.periodic import periodic
from kernel.pipeline import PlacedMiddleware, order_middleware
from kernel.queue import create_broker
from kernel.redis_client import RedisClient, opened, redis_client
from kernel.routing import WebhookRoutes
from kernel.settings import (
    KernelSettings,
    RawSettings,
    SettingsError,
    describe,
    load_raw,
    plugin_table,
    switched_off,
    validate_kernel,
)

_VERB = re.compile(r"^[a-z][a-z0-9_]*$")

SettingsT = TypeVar("SettingsT", bound=BaseModel)
StateT = TypeVar("StateT")


class Kernel:
    """What the enabled plugins contributed, plus the shared engine and broker. One per process."""

    def __init__(
        self,
        settings: KernelSettings,
        manager: pluggy.PluginManager,
        enabled: list[str],
        plugin_settings: dict[str, BaseModel],
    ) -> None:
        self.settings = settings
        self.manager = manager
        self.enabled = enabled
        self.plugin_settings = plugin_settings
        self.engine: PostgresEngine | None = None
        self.broker: AsyncBroker | None = None
        self.tasks: dict[str, AsyncTaskiqDecoratedTask[Any, Any]] = {}
        self.middleware: list[PlacedMiddleware] = []
        self.payments: dict[str, PaymentProvider] = {}
        self.messaging: dict[str, MessagingChannel] = {}
        self._plugin_state: dict[str, Any] = {}
        self.credentials = CredentialStore(self)
        self.webhook_routes = WebhookRoutes(self)
        self._webhook_secret: bytes | None = None
        # Whether this process serves (web app, worker): only then do background loops run (see `running`).
        self.serving = False

    def config(self, plugin: str) -> BaseModel:
        """The validated settings of an enabled plugin (its `settings_model` instance)."""
        return self.plugin_settings[plugin]

    def settings_of(self, plugin: str, model: type[SettingsT]) -> SettingsT:
        """`config(plugin)`, checked to be an instance of `model`: the typed way for a plugin to read its table."""
        settings = self.plugin_settings[plugin]
        if not isinstance(settings, model):
            raise TypeError(f"plugins.{plugin} was validated by {type(settings).__name__}, not {model.__name__}")
        return settings

    def state(self, plugin: str, build: Callable[[Kernel], StateT]) -> StateT:
        """The one per-kernel object where `plugin` keeps its state, built by `build(kernel)` on first use.

        Plugins keep pools, caches and clients here instead of module globals, so two kernels in one process
        (tests, the CLI beside a server) never share them. Build only wiring here; I/O belongs in `lifespan`.
        """
        try:
            state: StateT = self._plugin_state[plugin]
        except KeyError:
            state = self._plugin_state[plugin] = build(self)
        return state

    def redis(self, **options: Any) -> RedisClient:
        """A new client for the configured Redis (single server, Cluster or Sentinel, by `SOKO_REDIS_MODE`), with
        redis-py connection `options`; the caller closes it (`aclose`). Plugins build every client here, so none
        needs to know how Redis is deployed; `kernel.redis_client.RedisNotConfigured` without SOKO_REDIS_URL."""
        return redis_client(self.settings, **options)

    def redis_opened(self, **options: Any) -> AbstractAsyncContextManager[RedisClient]:
        """`async with kernel.redis_opened(**options) as client`: `redis(**options)` for a lifespan, ready for
        concurrent use from the start (a Cluster's topology is discovered first) and closed at exit."""
        return opened(self.redis(**options))

    @property
    def https(self) -> bool:
        """Whether browsers reach this deployment over HTTPS: everywhere but development and test, which serve
        plain HTTP on localhost. Cookies are then Secure and named `__Host-...` (`cookie_name`)."""
        return self.settings.env not in {"development", "test"}

    def cookie_name(self, name: str) -> str:
        """`name` as a cookie is called here: `__Host-<name>` over HTTPS, which a browser accepts only when set
        Secure, on Path=/ and without a Domain by this very host, so a sibling subdomain (another store) cannot
        toss one onto ours from the parent domain."""
        return f"__Host-{name}" if self.https else name

    def call(self, hook: str, /, **kwargs: Any) -> list[tuple[str, Any]]:
        """Call a hook on every enabled plugin in settings order; results keep their plugin's name."""
        return plugins.call_each(self.manager, hook, self.enabled, **kwargs)

    async def emit(self, hook: str, /, **kwargs: Any) -> None:
        """Call an event hook (e.g. `payment_event`) and await what the implementations returned."""
        await plugins.await_all(self.call(hook, kernel=self, **kwargs))

    def task(self, name: str) -> AsyncTaskiqDecoratedTask[Any, Any]:
        """A registered task by its full name, ready for `.kiq(...)`."""
        try:
            return self.tasks[name]
        except KeyError:
            raise LookupError(f"no task {name!r}; registered: {', '.join(sorted(self.tasks)) or 'none'}") from None

    def tenant_transaction(self, tenant_id: str | None = None) -> Any:
        """A transaction scoped to `tenant_id` (default: the tenant bound to this request or job)."""
        return db.tenant_transaction(self._engine(), tenant_id)

    def connection(self) -> Any:
        """The asyncpg connection of the open transaction, for the SQL the ORM cannot say (conditional UPDATEs)."""
        transaction = self._engine().current_transaction.get()
        if transaction is None:
            raise RuntimeError("no transaction is open: run inside a tenant's request, job or tenant_transaction()")
        return transaction.connection

    def in_transaction(self) -> bool:
        """Whether this request or job has a transaction open (then `connection()` is its connection)."""
        return self._engine().current_transaction.get() is not None

    def unscoped_connection(self) -> Any:
        """A pooled connection with no tenant and no transaction, for the kernel's SECURITY DEFINER functions
        (webhook routes, the inbox). Tenant data is out of its reach: row-level security fails closed."""
        return self._engine().pool.acquire()

    def webhook_path(self, kind: str, name: str, tenant_id: str) -> str:
        """`/webhooks/<kind>/<name>/<token>`: the webhook URL path (no host) that names `tenant_id` unforgeably."""
        if kind not in ("payments", "messaging"):
            raise ValueError(f"webhook kind must be 'payments' or 'messaging', not {kind!r}")
        return f"/webhooks/{kind}/{name}/{webhook_tokens.token(self.webhook_secret(), kind, name, tenant_id)}"

    def webhook_secret(self) -> bytes:
        if self._webhook_secret is None:
            configured = self.settings.webhook_token_secret
            self._webhook_secret = (
                configured.get_secret_value().encode()
                if configured is not None
                else local_secret(self.settings, "webhook-token.key", setting="webhook_token_secret")
            )
        return self._webhook_secret

    def _engine(self) -> PostgresEngine:
        if self.engine is None:
            raise db.ServiceUnavailable("SOKO_DATABASE_URL", "no database is configured")
        return self.engine

    def _bind_tables(self, engine: PostgresEngine) -> None:
        """Point every plugin table at the app role's engine (piccolo would otherwise use PICCOLO_CONF's)."""
        for config in migrations.app_configs(self):
            for table in config.table_classes:
                table._meta.db = engine

    @asynccontextmanager
    async def running(self, *, worker: bool = False, serving: bool = False) -> AsyncIterator[None]:
        """Start the pool, the broker's producer side and every plugin's lifespan; stop them in reverse.

        `serving`: the web app and the worker pass it; then the background loops run (periodic jobs, the change
        listeners plugins keep, reading `kernel.serving`). A CLI command that starts the kernel for one operation
        runs none of them, so nothing it waits for at exit is parked in a wait or a Redis call.
        """
        self.serving = serving
        async with AsyncExitStack() as stack:
            if self.engine is not None:
                await db.start_pool(
                    self.engine,
                    "SOKO_DATABASE_URL",
                    min_size=self.settings.database_pool_min,
                    max_size=self.settings.database_pool_max,
                )
                stack.push_async_callback(self.engine.close_connection_pool)
                await db.check_role(self.engine)
                self._bind_tables(self.engine)
            if self.broker is not None and not worker:
                try:
                    await self.broker.startup()
                except (RedisError, OSError) as error:
                    reason = f"cannot reach Redis: {type(error).__name__}: {error}"
                    raise db.ServiceUnavailable("SOKO_REDIS_URL", reason) from None
                stack.push_async_callback(self.broker.shutdown)
            if self.engine is not None and self.broker is not None:
                await stack.enter_async_context(periodic(self, inbox.SWEEP_TASK, self.settings.webhook_retry_seconds))
            for _, manager in self.call("lifespan", kernel=self):
                await stack.enter_async_context(manager)
            yield


def build_kernel(raw: RawSettings | None = None, extra_plugins: Iterable[tuple[str, object]] = ()) -> Kernel:
    """Validate settings, load the enabled plugins and collect what they contribute; raise every problem at once."""
    raw = raw or load_raw()
    settings, problems = validate_kernel(raw)
    if settings is None:
        raise SettingsError(problems)
    fields.set_default_region(settings.default_region)
    extra = list(extra_plugins)
    enabled = [name for name in settings.plugins.enabled if not switched_off(raw, name)]
    manager = plugins.new_manager()
    problems += plugins.load(manager, enabled, extra)
    order = [name for name in enabled if manager.get_plugin(name) is not None] + [name for name, _ in extra]
    plugin_settings, settings_problems = _validate_plugin_tables(raw, manager, order)
    problems += settings_problems
    if problems:  # the register hooks below may read their plugin's settings, which must be valid by then
        raise SettingsError(problems)
    kernel = Kernel(settings, manager, order, plugin_settings)
    if settings.database_url is not None:
        kernel.engine = db.create_engine(
            settings.database_url.get_secret_value(), pooled=settings.database_pooler == "transaction"
        )
    if settings.redis_url is not None:
        kernel.broker = create_broker(
            redis_client(settings),
            queue_name=settings.queue_name,
            idle_timeout_ms=settings.queue_reclaim_after_ms,
            replicas=settings.queue_replicas,
            replica_wait_ms=settings.queue_replica_wait_ms,
        )
        kernel.broker.add_dependency_context({Kernel: kernel})
        for name, function in ((inbox.PROCESS_TASK, inbox.process_task), (inbox.SWEEP_TASK, inbox.sweep_task)):
            kernel.tasks[name] = kernel.broker.register_task(function(kernel), task_name=name)
    for collect in (
        _collect_middleware,
        _collect_tasks,
        partial(_collect_named, hook="register_payment_providers", into=kernel.payments),
        partial(_collect_named, hook="register_messaging_channels", into=kernel.messaging),
    ):
        problems += _problems_of(collect, kernel)
    if not problems:  # the checks read what was collected, which is only whole without problems
        problems += _problems_of(_checks, kernel)
    if problems:
        raise SettingsError(problems)
    return kernel


def _problems_of(collect: Callable[[Kernel], list[str]], kernel: Kernel) -> list[str]:
    """What `collect` reports, and the problems of a plugin hook that raised `SettingsError` on the way: one
    plugin's missing secret does not hide another's."""
    try:
        return collect(kernel)
    except SettingsError as error:
        return error.problems


def _checks(kernel: Kernel) -> list[str]:
    return [problem for _, found in kernel.call("check_kernel", kernel=kernel) for problem in found]


def _validate_plugin_tables(
    raw: RawSettings, manager: pluggy.PluginManager, order: list[str]
) -> tuple[dict[str, BaseModel], list[str]]:
    models = dict(plugins.call_each(manager, "settings_model", order))
    validated: dict[str, BaseModel] = {}
    problems = []
    for name in order:
        table = plugin_table(raw, name)
        model = models.get(name)
        if model is None:
            if table:
                problems.append(f"plugins.{name}: this plugin takes no settings; remove the table")
            continue
        try:
            validated[name] = model.model_validate(drop_empty_secrets(table, model))
        except ValidationError as error:
            problems += describe(error, prefix=f"plugins.{name}.", model=model)
    problems += secrets_in_files(raw.root, raw.env, {f"plugins.{name}": model for name, model in models.items()})
    configured = set(raw.data.get("plugins") or {}) - {"enabled"}
    known = set(plugins.installed()) | set(order)
    problems += [
        f"plugins.{name}: no installed plugin is called {name!r}; check the spelling of the table"
        for name in sorted(configured - known)
    ]
    return validated, problems


def _collect_middleware(kernel: Kernel) -> list[str]:
    placed = [
        PlacedMiddleware(plugin, middleware)
        for plugin, contributed in kernel.call("register_middleware", kernel=kernel)
        for middleware in contributed
    ]
    kernel.middleware, problems = order_middleware(placed)
    return problems


def _collect_tasks(kernel: Kernel) -> list[str]:
    problems = []
    for plugin, contributed in kernel.call("register_tasks", kernel=kernel):
        for verb, function in contributed.items():
            if not _VERB.match(verb):
                problems.append(f"plugin {plugin!r}: task verb {verb!r} must be lower_snake_case")
            elif kernel.broker is not None:
                name = f"{plugin}.{verb}"
                kernel.tasks[name] = kernel.broker.register_task(function, task_name=name)
    return problems


def _collect_named(kernel: Kernel, *, hook: str, into: dict[str, Any]) -> list[str]:
    problems = []
    for plugin, contributed in kernel.call(hook, kernel=kernel):
        for item in contributed:
            if item.name in into:
                problems.append(f"plugin {plugin!r}: {hook} name {item.name!r} is already taken")
            into[item.name] = item
    return problems
