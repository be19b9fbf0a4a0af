"""`soko`: serve, work, migrate, and inspect plugins and settings. Plugins add their own commands."""

from __future__ import annotations

import asyncio
import inspect
import json
import sys
from typing import Any, NoReturn

import click
from redis.exceptions import RedisError

from kernel import db, migrations, plugins, servers
from kernel.credentials_cli import credentials
from kernel.kernel import Kernel, build_kernel
from kernel.logs import configure_logging
from kernel.metrics_export import MetricsUnavailable, exporting
from kernel.processes import supervise
from kernel.settings import SettingsError, masked


def load_kernel(*, fresh: bool = False) -> Kernel:
    """Build the kernel or exit non-zero naming every settings problem, before anything binds or connects.

    One kernel per command line: the plugin commands, the services check and the command itself share it (each
    build reads the files and loads the plugins again). `fresh` builds anew, after the environment changed.
    """
    try:
        kernel = _built(click.get_current_context(silent=True), fresh=fresh)
    except SettingsError as error:
        click.echo(f"soko: {error}", err=True)
        sys.exit(2)
    configure_logging(kernel.settings.log_level)
    return kernel


def _built(ctx: click.Context | None, *, fresh: bool = False) -> Kernel:
    meta = ctx.find_root().meta if ctx is not None else {}
    if fresh or "soko.kernel" not in meta:
        meta["soko.kernel"] = build_kernel()
    kernel: Kernel = meta["soko.kernel"]
    return kernel


def require_services(kernel: Kernel) -> None:
    missing = [
        variable
        for variable, value in (
            ("SOKO_DATABASE_URL", kernel.settings.database_url),
            ("SOKO_REDIS_URL", kernel.settings.redis_url),
        )
        if value is None
    ]
    if missing:
        click.echo(
            f"soko: set {' and '.join(missing)}, or run `make run` (soko dev): the commands of this project find "
            "its embedded servers by themselves",
            err=True,
        )
        sys.exit(2)


async def _pending(kernel: Kernel, *, as_owner: bool = False) -> list[str]:
    """What is not yet migrated, asked as the owner when migrating (the app role may not exist yet), else as the
    app role, which must also be one that row-level security applies to."""
    owner = kernel.settings.database_owner_url if as_owner else None
    engine = db.create_engine(owner.get_secret_value()) if owner else kernel.engine
    assert engine is not None
    await db.start_pool(engine, "SOKO_DATABASE_OWNER_URL" if owner else "SOKO_DATABASE_URL", min_size=1, max_size=1)
    try:
        if not as_owner:
            await db.check_role(engine)
        return await migrations.pending(kernel, engine)
    except db.UnsafeDatabaseRole as error:
        _fail(str(error))
    finally:
        await engine.close_connection_pool()


async def _reach_redis(kernel: Kernel) -> None:
    assert kernel.settings.redis_url is not None
    try:
        async with kernel.redis(socket_connect_timeout=5) as client:
            await client.ping()
    except (RedisError, OSError) as error:
        raise db.ServiceUnavailable("SOKO_REDIS_URL", f"cannot reach Redis: {type(error).__name__}: {error}") from None


def preflight(kernel: Kernel) -> None:
    """Refuse to start a server or worker that could not do its job safely, before anything binds."""
    require_services(kernel)
    asyncio.run(_reach_redis(kernel))
    waiting = asyncio.run(_pending(kernel))
    if waiting:
        _fail(f"{len(waiting)} migration(s) pending, run `soko migrate`: {', '.join(waiting)}")


def _fail(message: str) -> NoReturn:
    click.echo(f"soko: {message}", err=True)
    sys.exit(1)


class SokoGroup(click.Group):
    """Adds the commands of enabled plugins, so `soko --help` shows what this deployment can do.

    A server that is not configured or cannot be reached ends any command with one line naming its setting.
    """

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except (db.ServiceUnavailable, db.UnsafeDatabaseRole, MetricsUnavailable) as error:
            _fail(str(error))

    def resolve_command(
        self, ctx: click.Context, args: list[str]
    ) -> tuple[str | None, click.Command | None, list[str]]:
        name, command, rest = super().resolve_command(ctx, args)
        if name not in self.commands and "--help" not in rest:  # plugin commands all act on a store's data
            require_services(load_kernel())
        return name, command, rest

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted({*super().list_commands(ctx), *self._plugin_commands(ctx)})

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        return super().get_command(ctx, cmd_name) or self._plugin_commands(ctx).get(cmd_name)

    def _plugin_commands(self, ctx: click.Context) -> dict[str, click.Command]:
        try:
            kernel = _built(ctx)
        except SettingsError:
            return {}
        return {
            command.name: command
            for _, commands in kernel.call("register_commands", kernel=kernel)
            for command in commands
            if command.name
        }


@click.group(cls=SokoGroup)
def main() -> None:
    """soko: a plugin-based backend for multi-tenant commerce."""


main.add_command(credentials)


@main.command()
@click.option("--bind", help="host:port to listen on (default: the `bind` setting)")
@click.option("--workers", type=int, help="web processes (default: the `web_workers` setting)")
def serve(bind: str | None, workers: int | None) -> None:
    """Serve HTTP with the `server` setting's ASGI server (hypercorn or uvicorn). Refuses to start on bad settings
    or pending migrations.

    SIGTERM drains: no new connections, requests in flight get `shutdown_grace` seconds to be answered, then the
    processes exit. A process whose startup fails makes the command exit non-zero.
    """
    kernel = load_kernel()
    preflight(kernel)
    bind = bind or kernel.settings.bind
    count = workers or kernel.settings.web_workers
    grace = kernel.settings.shutdown_grace
    target, arguments = servers.prepare(kernel.settings.server, bind, grace)
    click.echo(f"soko: serving on http://{bind} with {count} {kernel.settings.server} process(es)", err=True)
    with exporting(kernel, role="web"):
        code = supervise(target, arguments, count=count, grace=grace, role="serve")
    sys.exit(code)


@main.command()
@click.option("--processes", type=int, help="worker processes (default: the `worker_processes` setting)")
def worker(processes: int | None) -> None:
    """Run the taskiq worker for every enabled plugin's tasks.

    SIGTERM stops it taking jobs at once; a job already running gets `shutdown_grace` seconds to finish, else it
    is left unacknowledged and so handed back (redelivered after `queue_reclaim_after_ms`).
    """
    from taskiq.cli.worker.args import WorkerArgs

    kernel = load_kernel()
    preflight(kernel)
    grace = kernel.settings.shutdown_grace
    args = WorkerArgs(
        broker="kernel.worker:broker",
        modules=[],
        workers=processes or kernel.settings.worker_processes,
        configure_logging=False,
        wait_tasks_timeout=grace,
        shutdown_timeout=min(grace, WORKER_BROKER_SHUTDOWN_S),
    )
    click.echo(f"soko: worker with {args.workers} process(es), tasks: {', '.join(sorted(kernel.tasks))}", err=True)
    with exporting(kernel, role="worker"):
        code = supervise(work, {"args": args}, count=args.workers, grace=grace, role="worker")
    sys.exit(code)


WORKER_BROKER_SHUTDOWN_S = 2.0


def work(args: Any, shutdown_event: Any) -> None:
    """One worker process: taskiq's listener, which handles the SIGTERM the supervisor sends it."""
    from taskiq.cli.worker.run import start_listen

    start_listen(args)


@main.command()
@click.option("--check", is_flag=True, help="only report: exit 1 while any migration is pending")
def migrate(check: bool) -> None:
    """Apply the migrations of the kernel and every enabled plugin (as SOKO_DATABASE_OWNER_URL)."""
    kernel = load_kernel()
    require_services(kernel)
    waiting = asyncio.run(_pending(kernel, as_owner=True))
    if check:
        click.echo("\n".join(waiting) if waiting else "no migrations pending")
        sys.exit(1 if waiting else 0)
    if not waiting:
        click.echo("no migrations pending")
        return
    click.echo(f"applying {len(waiting)} migration(s): {', '.join(waiting)}")
    asyncio.run(migrations.apply(kernel))
    click.echo("migrations applied")


@main.command("plugins")
@click.option("--json", "as_json", is_flag=True, help="machine-readable output")
def plugins_command(as_json: bool) -> None:
    """Installed plugins: version, enabled, hooks implemented, pipeline position."""
    kernel = load_kernel()
    stages = {placed.plugin: placed.stage.name for placed in kernel.middleware}
    rows = []
    for name in sorted(plugins.installed()):
        plugin = kernel.manager.get_plugin(name)
        hooks = sorted(caller.name for caller in kernel.manager.get_hookcallers(plugin) or ()) if plugin else []
        rows.append(
            {
                "name": name,
                "version": plugins.version(name),
                "enabled": plugin is not None,
                "hooks": hooks,
                "stage": stages.get(name),
            }
        )
    if as_json:
        click.echo(json.dumps(rows, indent=2))
        return
    for row in rows:
        state = "enabled " if row["enabled"] else "disabled"
        stage = f" stage={row['stage']}" if row["stage"] else ""
        click.echo(f"{row['name']:<20} {row['version']:<10} {state}{stage}  hooks: {', '.join(row['hooks']) or '-'}")
    click.echo(
        "pipeline: request-id/access-log -> "
        + " -> ".join(f"{placed.stage.name.lower()}({placed.plugin})" for placed in kernel.middleware)
        + (" -> " if kernel.middleware else "")
        + "view"
    )


@main.group()
def config() -> None:
    """Check or show the settings this process would run with."""


@config.command("check")
def config_check() -> None:
    """Validate settings and plugins; exit non-zero listing every problem."""
    kernel = load_kernel()
    click.echo(f"settings valid (env {kernel.settings.env}; plugins: {', '.join(kernel.enabled) or 'none'})")


@config.command("show")
def config_show() -> None:
    """Print the effective settings as JSON, secrets masked."""
    kernel = load_kernel()
    document: dict[str, Any] = masked(kernel.settings)
    document["plugins"] = {"enabled": kernel.enabled} | {
        name: masked(model) for name, model in kernel.plugin_settings.items()
    }
    click.echo(json.dumps(document, indent=2, default=str))


@main.command()
def dev() -> None:
    """Run web and worker together for development, on embedded PostgreSQL and Redis unless URLs are set."""
    import os
    from pathlib import Path

    from kernel.dev import embedded_services, published, supervise

    root = Path(os.environ.get("SOKO_ROOT") or Path.cwd())
    configure_logging("INFO")
    if os.environ.get("SOKO_DATABASE_URL") and os.environ.get("SOKO_REDIS_URL"):
        sys.exit(_develop(dict(os.environ), supervise))
    click.echo(f"soko dev: starting embedded PostgreSQL and Redis under {root / 'var'}", err=True)
    with embedded_services(root / "var") as embedded:
        urls = {
            "database_owner_url": embedded.database_url,
            "database_url": db.with_credentials(embedded.database_url, user=DEV_APP_ROLE),
            "redis_url": embedded.redis_url,
        }
        env = dict(os.environ) | {f"SOKO_{key.upper()}": url for key, url in urls.items()}
        with published(root, urls):
            code = _develop(env, supervise)
    sys.exit(code)


DEV_APP_ROLE = "soko_app"


def _develop(env: dict[str, str], supervise: Any) -> int:
    """Migrate, seed, then supervise `soko serve` and `soko worker` until Ctrl-C or SIGTERM."""
    import os

    os.environ.update(env)
    kernel = load_kernel(fresh=True)
    click.echo("soko dev: applying migrations", err=True)
    asyncio.run(migrations.apply(kernel))
    seeded = asyncio.run(_seed(kernel))
    soko = [sys.executable, "-m", "kernel"]
    url = f"http://{kernel.settings.bind}"
    click.echo(f"soko dev: web on {url} and a worker; Ctrl-C stops both", err=True)
    click.echo(f"soko dev: API docs {url}/docs, OpenAPI document {url}/openapi.json", err=True)
    for text in seeded:
        click.echo(f"soko dev: {text}", err=True)
    from kernel.dev_services import dev_services

    with dev_services(kernel):  # the plugins' stand-ins (a PSP simulator) run for as long as web and worker do
        return int(supervise([[*soko, "serve"], [*soko, "worker"]], env))


async def _seed(kernel: Kernel) -> list[str]:
    """Run every plugin's `dev_seed` in order; the lines they returned, for the developer to read."""
    lines = []
    async with kernel.running():
        for _, seeded in kernel.call("dev_seed", kernel=kernel):
            line = await seeded if inspect.isawaitable(seeded) else seeded
            if isinstance(line, str):
                lines.append(line)
    return lines
