"""A tenant-scoped read through soko against the same read written by hand in plain Quart: requests/s as a ratio.

    .venv/bin/python benchmarks/bench_tenancy.py            # defaults: 3 rounds x 10 s, 64 connections

Both servers answer `GET /items` for the Host `bench.localhost` with the 20 rows that tenant owns, read with the
same piccolo query, on the same pool size, inside a transaction scoped with
`set_config('app.current_tenant', $1, true)` (the kernel's `tenant_transaction`) on a table made tenant-owned by
the tenancy helper:

- `plain-quart`: a Quart app that maps the Host to the tenant with a dict lookup and opens the transaction itself;
- `soko`: `soko serve`'s app with the tenancy plugin (resolution from its cache, the kernel's tenant transaction,
  the request id and JSON access log) and a one-route plugin doing the read.

The servers, the rounds and wrk are bench_kernel.py's (same hypercorn settings as `soko serve`, interleaved rounds,
server CPU per request). A scratch database is created on the PostgreSQL that `--admin-url` names (a superuser)
and dropped at the end, with the app role the kernel's migration made for it. Target: soko keeps at least 85%.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import urllib.request
import uuid
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import asyncpg
from bench_kernel import (
    REPO,
    WRK_REPORT,
    Sample,
    Server,
    Target,
    clean_env,
    group_cpu_s,
    machine,
    running,
    settings_root,
    soko_says,
)
from piccolo.columns import Varchar
from piccolo.table import Table
from quart import Blueprint, Quart, request

from kernel import hookimpl
from kernel.app import create_app
from kernel.db import create_engine, start_pool, tenant_transaction, with_credentials
from kernel.kernel import build_kernel
from kernel.logs import configure_logging
from plugins.tenancy.public import tenant_owned

TARGET_RATIO = 0.85
HOST = "bench.localhost"
ROWS = 20
APP_ROLE = "soko_bench_app"  # a role of the benchmark's own, so it never changes the test suite's role
POOL_MIN, POOL_MAX = 1, 10  # soko's defaults (settings.toml), used by both servers


class BenchItem(Table, tablename="bench_items"):
    body = Varchar(length=100)


async def read_items() -> dict[str, Any]:
    """The read both servers make: the same piccolo query, inside the tenant's transaction."""
    return {"items": await BenchItem.select(BenchItem.id, BenchItem.body).order_by(BenchItem.id)}


# -- the two apps (built in the server process, by hypercorn, from `bench_tenancy:<name>()`) ------------------


class BenchRead:
    """A soko plugin with one tenant-scoped route; the kernel runs it in the tenant's transaction."""

    @hookimpl
    def register_blueprints(self) -> list[Blueprint]:
        blueprint = Blueprint("benchread", __name__)
        blueprint.add_url_rule("/items", view_func=read_items)
        return [blueprint]


def soko_app() -> Quart:
    """`kernel.asgi` plus the bench plugin: the same settings, logging and app as `soko serve`."""
    configure_logging()
    kernel = build_kernel(extra_plugins=[("benchread", BenchRead())])
    configure_logging(kernel.settings.log_level)
    BenchItem._meta.db = kernel.engine
    return create_app(kernel)


def plain_app() -> Quart:
    """The same read by hand: Host to tenant from a dict, then the query in the tenant's transaction.

    The transaction is the kernel's own `tenant_transaction` (BEGIN with set_config, then COMMIT with the pool's
    reset, on one pooled connection), so both servers pay the same for it and the ratio is what soko adds around
    it. piccolo's plain `engine.transaction()` would not do: a client hanging up during BEGIN leaks its connection
    (see kernel/db.py), and wrk hangs up on every connection at the end of each run, so the pool runs dry within a
    few runs.
    """
    engine = create_engine(os.environ["SOKO_DATABASE_URL"])
    BenchItem._meta.db = engine
    app = Quart(__name__)
    tenants: dict[str, str] = {}

    @app.before_serving
    async def start() -> None:
        await start_pool(engine, "SOKO_DATABASE_URL", min_size=POOL_MIN, max_size=POOL_MAX)
        async with engine.pool.acquire() as connection:
            rows = await connection.fetch("SELECT slug, id::text FROM tenants")
        tenants.update({f"{row['slug']}.localhost": row["id"] for row in rows})

    @app.after_serving
    async def stop() -> None:
        await engine.close_connection_pool()

    @app.get("/healthz")
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/items")
    async def items() -> Any:
        tenant = tenants.get(request.host)
        if tenant is None:
            return {"code": "tenant_not_found"}, 404
        async with tenant_transaction(engine, tenant):
            return await read_items()

    return app


# -- the database ---------------------------------------------------------------------------------------------


@contextmanager
def scratch_database(admin_url: str, redis_url: str, workdir: Path) -> Iterator[dict[str, str]]:
    """A migrated database with two tenants' rows in a tenant-owned table; yields the servers' environment."""
    name = f"soko_bench_{uuid.uuid4().hex[:8]}"
    asyncio.run(_admin(admin_url, f'CREATE DATABASE "{name}"'))
    owner_url = with_credentials(admin_url, user=_user(admin_url), database=name)
    env = {
        "SOKO_ENV": "production",
        "SOKO_ROOT": str(settings_root(workdir)),
        "SOKO_PLUGINS__ENABLED": '["tenancy"]',
        "SOKO_PLUGINS__TENANCY__BASE_DOMAINS": '["localhost"]',
        "SOKO_DATABASE_URL": with_credentials(admin_url, user=APP_ROLE, password=APP_ROLE, database=name),
        "SOKO_DATABASE_OWNER_URL": owner_url,
        "SOKO_DATABASE_POOL_MIN": str(POOL_MIN),
        "SOKO_DATABASE_POOL_MAX": str(POOL_MAX),
        "SOKO_REDIS_URL": redis_url,
        "SOKO_QUEUE_NAME": f"soko-bench-{name}",
    }
    try:
        soko = Path(sys.executable).with_name("soko")
        subprocess.run([str(soko), "migrate"], env=clean_env(env), cwd=REPO, check=True, capture_output=True)
        asyncio.run(_seed(owner_url))
        yield env
    finally:
        asyncio.run(
            _admin(admin_url, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)', f"DROP ROLE IF EXISTS {APP_ROLE}")
        )


async def _seed(owner_url: str) -> None:
    connection = await asyncpg.connect(owner_url)
    try:
        await connection.execute("CREATE TABLE bench_items (id serial PRIMARY KEY, body varchar(100) NOT NULL)")
        for statement in tenant_owned("bench_items"):
            await connection.execute(statement)
        for slug in ("bench", "other"):
            tenant = await connection.fetchval("INSERT INTO tenants (slug, name) VALUES ($1, $1) RETURNING id", slug)
            await connection.executemany(
                "INSERT INTO bench_items (tenant_id, body) VALUES ($1, $2)",
                [(tenant, f"{slug} item {n}") for n in range(ROWS)],
            )
    finally:
        await connection.close()


async def _admin(url: str, *statements: str) -> None:
    connection = await asyncpg.connect(url)
    try:
        for statement in statements:
            await connection.execute(statement)
    finally:
        await connection.close()


def _user(url: str) -> str:
    return urlsplit(url).username or "postgres"


# -- load -----------------------------------------------------------------------------------------------------


def check_answer(server: Server) -> None:
    """Both servers must return exactly the bench tenant's rows before they are measured."""
    asked = urllib.request.Request(f"http://127.0.0.1:{server.port}/items", headers={"Host": HOST})
    with urllib.request.urlopen(asked, timeout=10) as response:
        answer = response.read()
    bodies = [item["body"] for item in json.loads(answer)["items"]]
    if bodies != [f"bench item {n}" for n in range(ROWS)]:
        raise SystemExit(f"{server.target.name}: /items answered {answer[:300]!r}")


def wrk(port: int, seconds: float, args: argparse.Namespace, script: Path) -> dict[str, Any]:
    command = ["wrk", f"-t{args.threads}", f"-c{args.connections}", f"-d{seconds:g}s", "--latency", "-s", str(script)]
    result = subprocess.run(
        [*command, "-H", f"Host: {HOST}", f"http://127.0.0.1:{port}/items"],
        capture_output=True,
        text=True,
        timeout=seconds + 60,
        check=True,
    )
    report = json.loads(result.stdout.strip().splitlines()[-1])
    if any(report["errors"].values()):
        raise SystemExit(f"wrk saw errors against port {port}: {report['errors']}\n{result.stdout}")
    return report


def measure(server: Server, round_: int, args: argparse.Namespace, script: Path) -> Sample:
    wrk(server.port, args.warmup, args, script)
    cpu_before = group_cpu_s(server.process.pid)
    report = wrk(server.port, args.duration, args, script)
    cpu = group_cpu_s(server.process.pid) - cpu_before
    if not report["requests"]:
        tail = server.log_path.read_text(errors="replace")[-3000:]
        raise SystemExit(f"{server.target.name}: no request completed in {args.duration:g} s; its log ends:\n{tail}")
    sample = Sample(
        target=server.target.name,
        round=round_,
        rps=report["requests"] / (report["duration_us"] / 1e6),
        p50_ms=report["p50_us"] / 1000,
        p99_ms=report["p99_us"] / 1000,
        requests=report["requests"],
        cpu_us=cpu / report["requests"] * 1e6,
    )
    print(
        f"  round {round_} {sample.target:<12} {sample.rps:8.0f} req/s  p50 {sample.p50_ms:6.2f} ms  "
        f"p99 {sample.p99_ms:6.2f} ms  server CPU {sample.cpu_us:5.0f} us/req",
        flush=True,
    )
    return sample


def report(samples: list[Sample]) -> float:
    """Medians per server, and soko's req/s as a ratio of plain Quart's (of medians, and paired per round)."""
    by = {name: [s for s in samples if s.target == name] for name in ("plain-quart", "soko")}
    plain_rps = statistics.median(s.rps for s in by["plain-quart"])
    print("\n| server | req/s (median) | p50 ms | p99 ms | server CPU us/req | req/s vs plain | paired |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    for name, runs in by.items():
        rps = statistics.median(s.rps for s in runs)
        paired = statistics.median(s.rps / next(p.rps for p in by["plain-quart"] if p.round == s.round) for s in runs)
        print(
            f"| {name} | {rps:.0f} | {statistics.median(s.p50_ms for s in runs):.2f} "
            f"| {statistics.median(s.p99_ms for s in runs):.2f} | {statistics.median(s.cpu_us for s in runs):.0f} "
            f"| {rps / plain_rps:.1%} | {paired:.1%} |"
        )
    return statistics.median(s.rps for s in by["soko"]) / plain_rps


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=float, default=10.0, help="seconds measured per run (default 10)")
    parser.add_argument("--warmup", type=float, default=3.0, help="seconds of load discarded before each run")
    parser.add_argument("--connections", type=int, default=64, help="keep-alive connections (default 64)")
    parser.add_argument("--threads", type=int, default=1, help="wrk threads (default 1: one core for the server)")
    parser.add_argument("--rounds", type=int, default=3, help="interleaved rounds; medians are reported")
    parser.add_argument("--admin-url", default="postgresql://postgres@127.0.0.1:5432/postgres", help="a superuser")
    parser.add_argument("--redis-url", default="redis://127.0.0.1:6379/0")
    parser.add_argument("--enforce", action="store_true", help=f"exit 1 when soko is under {TARGET_RATIO:.0%}")
    args = parser.parse_args()

    with ExitStack() as stack:
        workdir = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="soko-bench-tenancy-")))
        script = workdir / "report.lua"
        script.write_text(WRK_REPORT)
        env = stack.enter_context(scratch_database(args.admin_url, args.redis_url, workdir))
        print(" ".join(f"{key}={value!r}" for key, value in machine().items()))
        print(f"command: {' '.join([Path(sys.executable).name, *sys.argv])}")
        print(f"soko: {soko_says(env)}")
        chosen = [
            Target("plain-quart", "bench_tenancy:plain_app()", env, soko=False),
            Target("soko", "bench_tenancy:soko_app()", env, plugins=("tenancy",)),
        ]
        servers = [stack.enter_context(running(target, workdir)) for target in chosen]
        for server in servers:
            check_answer(server)
        samples = []
        for round_ in range(1, args.rounds + 1):
            shift = (round_ - 1) % len(servers)  # interleaved, each round starting one server later
            for server in servers[shift:] + servers[:shift]:
                samples.append(measure(server, round_, args, script))
        ratio = report(samples)
    verdict = "PASS" if ratio >= TARGET_RATIO else "FAIL"
    print(f"\nsoko's tenant-scoped read: {ratio:.1%} of plain Quart's req/s (target >= {TARGET_RATIO:.0%}): {verdict}")
    return 1 if args.enforce and verdict == "FAIL" else 0


if __name__ == "__main__":
    # SIGTERM (e.g. `timeout`) must unwind through the ExitStack, or the servers and database would outlive us.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    sys.exit(main())
