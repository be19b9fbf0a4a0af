"""soko against the same per-request work written by hand in plain Quart: req/s, p50, p99 and CPU, side by side.

    .venv/bin/python benchmarks/bench_side_by_side.py        # or: make bench (3 rounds x 10 s per route)

In one run, interleaved over rounds, the same three routes are served for the Host `bench.localhost`:

- `trivial`: a tenant route whose view does nothing;
- `limited`: the same behind a rate-limit check counted in Redis;
- `items`: a read of the tenant's 20 rows of a table under forced row-level security;

by `soko serve` (tenancy, security, ratelimit, auth, outbox, commerce and the benchmark's own plugin,
benchmarks/sidebyside, installed through an entry point like any third-party plugin; `--server` picks the ASGI
server, as the `server` setting does) and by benchmarks/hand_app.py on hypercorn with the Config `soko serve`
builds. soko alone also serves `checkout` (`POST /checkout` of a cart with 3 lines: reservation and order).

Load: wrk, `--threads` 1 and `--connections` 32, a warm-up before each measured run. Server CPU per request is the
user+system CPU of the server's process group over the run, divided by the requests it answered: a figure that
moves less with the other work on the box than req/s. A scratch database is made on the PostgreSQL `--admin-url`
names (a superuser) and dropped at the end.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import asyncpg
import httpx

BENCH_DIR = Path(__file__).resolve().parent
REPO = BENCH_DIR.parent
sys.path.insert(0, str(REPO))

from bench_kernel import WRK_REPORT, Server, Target, free_port, group_cpu_s, machine, running, stop  # noqa: E402

from kernel.testing.project import Project  # noqa: E402
from kernel.testing.services import create_database, drop_database  # noqa: E402

HOST = "bench.localhost"
ROWS = 20
ROUTES = {"trivial": "/bench/trivial", "limited": "/bench/limited", "items": "/bench/items"}
PLUGINS = ["tenancy", "security", "ratelimit", "auth", "outbox", "commerce", "benchplug"]
POLICIES = [  # the bench route counted per tenant, never reached; checkout as config/ratelimit.yaml counts it
    {"name": "bench", "routes": ["GET /bench/limited"], "limit": 100_000, "window_seconds": 1, "keys": ["tenant"]},
    {"name": "payments", "routes": ["POST /checkout"], "limit": 10, "window_seconds": 60, "keys": ["cart_id"]},
]
CHECKOUT_LUA = """
local carts, n = {}, 0
for line in io.lines("%s") do carts[#carts + 1] = line end
init = function(args) n = tonumber(args[1]) end
request = function()
  n = n + 1
  local body = '{"cart_id": "' .. carts[n] .. '", "customer_phone": "+254712345678"}'
  local headers = {["Host"] = "%s", ["Content-Type"] = "application/json",
                   ["Idempotency-Key"] = "bench-" .. n .. "-" .. math.random(1e9)}
  return wrk.format("POST", "/checkout", headers, body)
end
"""


@dataclass(frozen=True)
class Sample:
    server: str
    route: str
    round: int
    rps: float
    p50_ms: float
    p99_ms: float
    cpu_us: float
    requests: int


def plugin_site(into: Path) -> Path:
    """The benchmark plugin with a dist-info of its own (its entry point), on a path only the server gets."""
    site = into / "site"
    shutil.copytree(BENCH_DIR / "sidebyside" / "soko_benchplug", site / "soko_benchplug")
    info = site / "soko_benchplug-0.1.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: soko-benchplug\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text("[soko.plugins]\nbenchplug = soko_benchplug.plugin\n")
    return site


async def seed(owner_url: str, carts: int) -> list[str]:
    """Two stores with 20 rows each in `bench_items` (tenant-owned), and `carts` carts of 3 lines in one store."""
    from plugins.tenancy.rls import tenant_owned

    connection = await asyncpg.connect(owner_url)
    try:
        await connection.execute("CREATE TABLE bench_items (id serial PRIMARY KEY, body varchar(100) NOT NULL)")
        for statement in tenant_owned("bench_items"):
            await connection.execute(statement)
        await connection.execute("GRANT SELECT ON bench_items TO PUBLIC")
        tenants = {}
        for slug in ("bench", "other"):
            tenants[slug] = await connection.fetchval(
                "INSERT INTO tenants (slug, name) VALUES ($1, $1) RETURNING id", slug
            )
            await connection.executemany(
                "INSERT INTO bench_items (tenant_id, body) VALUES ($1, $2)",
                [(tenants[slug], f"{slug} item {n}") for n in range(ROWS)],
            )
        tenant = tenants["bench"]
        products = [
            await connection.fetchval(
                "INSERT INTO products (tenant_id, sku, name, price_minor, currency) VALUES ($1, $2, $2, 1000, 'KES') "
                "RETURNING id",
                tenant,
                f"bench-{n}",
            )
            for n in range(3)
        ]
        await connection.executemany(
            "INSERT INTO inventory (tenant_id, product_id, on_hand) VALUES ($1, $2, 1000000000)",
            [(tenant, product) for product in products],
        )
        rows = await connection.fetch(
            "INSERT INTO carts (tenant_id, currency) SELECT $1, 'KES' FROM generate_series(1, $2) RETURNING id",
            tenant,
            carts,
        )
        ids = [row["id"] for row in rows]
        await connection.execute(
            "INSERT INTO cart_items (tenant_id, cart_id, product_id, quantity) "
            "SELECT $1, c, p, 1 FROM unnest($2::uuid[]) c CROSS JOIN unnest($3::uuid[]) p",
            tenant,
            ids,
            products,
        )
        return [str(cart) for cart in ids]
    finally:
        await connection.close()


@contextmanager
def soko_server(project: Project, server: str) -> Iterator[Any]:
    with project.serve("--workers", "1", SOKO_SERVER=server) as running_:
        yield running_


@contextmanager
def granian(name: str, app: str, env: dict[str, str], cwd: Path, workdir: Path) -> Iterator[tuple[int, int, Path]]:
    """`app` on granian (one process, uvloop, HTTP/1), for `--granian`: measured as the issue's other candidate,
    not a server `soko serve` offers (docs/operations.md says why). Yields (process group, port, log)."""
    if shutil.which("granian", path=str(Path(sys.executable).parent)) is None:
        raise SystemExit("--granian: granian is not installed in this environment: pip install granian")
    port = free_port()
    log = workdir / f"{name}.log"
    command = [
        str(Path(sys.executable).parent / "granian"),
        *("--interface", "asgi", "--host", "127.0.0.1", "--port", str(port), "--workers", "1"),
        *("--http", "1", "--no-ws", "--loop", "uvloop", "--log-level", "warning", app),
    ]
    with log.open("wb") as out:
        process = subprocess.Popen(
            command, cwd=cwd, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
        )
    try:
        for _ in range(600):
            try:
                if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if process.poll() is not None:
                raise SystemExit(f"{name} exited:\n{log.read_text(errors='replace')[-3000:]}")
            time.sleep(0.1)
        else:
            raise SystemExit(f"{name} did not answer /healthz within 60 s")
        yield process.pid, port, log
    finally:
        stop(Server(Target(name, app, env), port, process, log))


def check(base_url: str, name: str, log: Path, cart: str | None) -> None:
    """Every route answers the same way on both servers before anything is measured."""
    for route, path in ROUTES.items():
        response = httpx.get(base_url + path, headers={"Host": HOST}, timeout=10)
        if response.status_code != 200:
            tail = log.read_text(errors="replace")[-3000:]
            raise SystemExit(f"{name} {route}: {response.status_code} {response.text[:300]}\n{tail}")
        if route == "items" and [item["body"] for item in response.json()["items"]] != [
            f"bench item {n}" for n in range(ROWS)
        ]:
            raise SystemExit(f"{name} items: {response.text[:300]}")
        # granian always sends `server: granian` (no setting turns it off): one more reason soko does not offer it.
        if "x-request-id" not in response.headers or ("server" in response.headers and "granian" not in name):
            raise SystemExit(f"{name} {route}: headers {dict(response.headers)}")
    if cart is not None:
        response = httpx.post(
            base_url + "/checkout",
            headers={"Host": HOST, "Idempotency-Key": str(uuid.uuid4())},
            json={"cart_id": cart, "customer_phone": "+254712345678"},
            timeout=10,
        )
        if response.status_code != 201:
            raise SystemExit(f"{name} checkout: {response.status_code} {response.text[:300]}")


_carts_used = [0]  # checkouts consume their cart: each wrk run starts past every cart an earlier one may have used


def wrk(port: int, path: str, seconds: float, args: argparse.Namespace, script: Path) -> dict[str, Any]:
    command = ["wrk", f"-t{args.threads}", f"-c{args.connections}", f"-d{seconds:g}s", "--latency", "-s", str(script)]
    result = subprocess.run(
        [*command, "-H", f"Host: {HOST}", f"http://127.0.0.1:{port}{path}", "--", str(_carts_used[0])],
        capture_output=True,
        text=True,
        timeout=seconds + 60,
        check=True,
    )
    try:
        report = json.loads(result.stdout.strip().splitlines()[-1])
    except (ValueError, IndexError):
        raise SystemExit(f"wrk against port {port}{path} said:\n{result.stdout}{result.stderr}") from None
    if path == "/checkout":
        _carts_used[0] += report["requests"] + args.connections * 2
    if any(report["errors"].values()):
        raise SystemExit(f"wrk saw errors against port {port}{path}: {report['errors']}\n{result.stderr}")
    return report


def measure(name: str, pgid: int, port: int, route: str, round_: int, args: argparse.Namespace, script: Path) -> Sample:
    path = ROUTES.get(route, "/checkout")
    wrk(port, path, args.warmup, args, script)
    cpu_before = group_cpu_s(pgid)
    with profiled(pgid, f"{name}-{route}", args):
        report = wrk(port, path, args.duration, args, script)
    cpu = group_cpu_s(pgid) - cpu_before
    sample = Sample(
        server=name,
        route=route,
        round=round_,
        rps=report["requests"] / (report["duration_us"] / 1e6),
        p50_ms=report["p50_us"] / 1000,
        p99_ms=report["p99_us"] / 1000,
        cpu_us=cpu / max(report["requests"], 1) * 1e6,
        requests=report["requests"],
    )
    print(
        f"  round {round_} {name:<6} {route:<8} {sample.rps:7.0f} req/s  p50 {sample.p50_ms:6.2f} ms  "
        f"p99 {sample.p99_ms:7.2f} ms  CPU {sample.cpu_us:5.0f} us/req",
        flush=True,
    )
    return sample


@contextmanager
def profiled(pgid: int, label: str, args: argparse.Namespace) -> Iterator[None]:
    """With `--profile DIR`: cProfile runs in the server's newest process (its web process; the supervisor is
    older) during the measured run, into DIR/<label>.prof (benchmarks/sidebyside/sitecustomize.py)."""
    if not args.profile:
        yield
        return
    child = max(int(stat.parent.name) for stat in Path("/proc").glob("[0-9]*/stat") if _pgrp(stat) == pgid)
    before = set(Path(args.profile).glob("*.prof"))
    os.kill(child, signal.SIGUSR1)
    try:
        yield
    finally:
        os.kill(child, signal.SIGUSR2)
        written = _written(Path(args.profile), before)
        written.rename(Path(args.profile) / f"{label}.prof")


def _written(directory: Path, before: set[Path]) -> Path:
    for _ in range(100):
        new = set(directory.glob("*.prof")) - before
        if new:
            return new.pop()
        time.sleep(0.1)
    raise SystemExit(f"no profile appeared in {directory}")


def _pgrp(stat: Path) -> int:
    try:
        return int(stat.read_text().rsplit(")", 1)[1].split()[2])
    except (OSError, IndexError, ValueError):
        return -1


def table(samples: list[Sample], servers: list[str]) -> None:
    """Medians per server and route, and soko's ratios to the hand-written app's (of medians, paired per round)."""
    print("\n| route | server | req/s | p50 ms | p99 ms | CPU µs/req | req/s vs hand | paired | p99 vs hand |")
    print("|---|---|---:|---:|---:|---:|---:|---:|---:|")
    for route in [*ROUTES, "checkout"]:
        hand = [s for s in samples if s.server == "hand" and s.route == route]
        for name in servers:
            runs = [s for s in samples if s.server == name and s.route == route]
            if not runs:
                continue
            rps = statistics.median(s.rps for s in runs)
            p99 = statistics.median(s.p99_ms for s in runs)
            ratio = paired = p99_ratio = "-"
            if hand and name != "hand":
                ratio = f"{rps / statistics.median(s.rps for s in hand):.0%}"
                paired = (
                    f"{statistics.median(s.rps / next(h.rps for h in hand if h.round == s.round) for s in runs):.0%}"
                )
                p99_ratio = f"{p99 / statistics.median(s.p99_ms for s in hand):.2f}x"
            print(
                f"| {route} | {name} | {rps:.0f} | {statistics.median(s.p50_ms for s in runs):.2f} | {p99:.2f} "
                f"| {statistics.median(s.cpu_us for s in runs):.0f} | {ratio} | {paired} | {p99_ratio} |"
            )


def bench_project(stack: ExitStack, workdir: Path, args: argparse.Namespace) -> tuple[Project, Path, list[str]]:
    """A migrated scratch database (dropped when `stack` closes) with the benchmark's stores, rows and carts, and
    a soko project enabling PLUGINS on it: the project, the plugin's site directory and the carts' ids."""
    database = asyncio.run(create_database(args.admin_url))
    stack.callback(lambda: asyncio.run(drop_database(args.admin_url, database)))
    project = Project(workdir / "project")
    project.root.mkdir()
    site = plugin_site(workdir)
    project.env = {
        "PYTHONPATH": str(site),
        "SOKO_DATABASE_URL": database.app_url,
        "SOKO_DATABASE_OWNER_URL": database.owner_url,
        "SOKO_REDIS_URL": args.redis_url,
        "SOKO_QUEUE_NAME": f"soko-bench-{uuid.uuid4().hex[:8]}",
    }
    if args.profile:
        Path(args.profile).mkdir(parents=True, exist_ok=True)
        shutil.copy(BENCH_DIR / "sidebyside" / "sitecustomize.py", site / "sitecustomize.py")
        project.env["BENCH_PROFILE_DIR"] = str(Path(args.profile).resolve())
    project.settings(PLUGINS)
    project.plugin_config("tenancy", {"base_domains": ["localhost"]})
    project.plugin_config("ratelimit", {"policies": POLICIES})
    project.migrate()
    carts = asyncio.run(seed(database.owner_url, args.carts))
    return project, site, carts


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=float, default=10.0, help="seconds measured per run (default 10)")
    parser.add_argument("--warmup", type=float, default=3.0, help="seconds of load discarded before each run")
    parser.add_argument("--connections", type=int, default=32, help="keep-alive connections (default 32)")
    parser.add_argument("--threads", type=int, default=1, help="wrk threads (default 1)")
    parser.add_argument("--rounds", type=int, default=3, help="interleaved rounds; medians are reported")
    parser.add_argument("--server", action="append", help="soko's ASGI server(s): hypercorn (default), uvicorn")
    parser.add_argument("--granian", action="store_true", help="also serve both apps on granian (measured only)")
    parser.add_argument("--carts", type=int, default=60_000, help="carts seeded for checkout (each is used once)")
    parser.add_argument("--profile", help="cProfile each server's measured runs into this directory")
    parser.add_argument("--no-checkout", action="store_true", help="skip the checkout route")
    parser.add_argument("--admin-url", default="postgresql://postgres@127.0.0.1:5432/postgres", help="a superuser")
    parser.add_argument("--redis-url", default="redis://127.0.0.1:6379/0")
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        raise SystemExit("wrk not found: apt-get install -y wrk")
    soko_servers = args.server or ["hypercorn"]
    with ExitStack() as stack:
        workdir = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="soko-bench-sbs-")))
        project, site, carts = bench_project(stack, workdir, args)
        report = workdir / "report.lua"
        report.write_text(WRK_REPORT)
        checkout = workdir / "checkout.lua"
        (workdir / "carts.txt").write_text("\n".join(carts) + "\n")
        checkout.write_text(CHECKOUT_LUA % (workdir / "carts.txt", HOST) + WRK_REPORT)
        info = machine() | {"load average": " ".join(f"{n:.2f}" for n in os.getloadavg())}
        print(" ".join(f"{key}={value!r}" for key, value in info.items()))
        print(f"command: {' '.join([Path(sys.executable).name, *sys.argv])}")

        hand_env = project.environment() | {"PYTHONPATH": f"{BENCH_DIR}{os.pathsep}{REPO}{os.pathsep}{site}"}
        hand = stack.enter_context(running(Target("hand", "hand_app:create()", hand_env), workdir))
        servers: dict[str, tuple[int, int]] = {"hand": (hand.process.pid, hand.port)}
        logs = {"hand": hand.log_path}
        for server in soko_servers:
            started = stack.enter_context(soko_server(project, server))
            servers[f"soko-{server}" if len(soko_servers) > 1 else "soko"] = (
                started.process.pid,
                int(started.base_url.rsplit(":", 1)[1]),
            )
            logs[list(servers)[-1]] = started.log_path
        if args.granian:
            (workdir / "hand_granian.py").write_text("from hand_app import create\n\napp = create()\n")
            shim_env = hand_env | {"PYTHONPATH": f"{workdir}{os.pathsep}{hand_env['PYTHONPATH']}"}
            for name, app, env, cwd in [
                ("hand-granian", "hand_granian:app", shim_env, REPO),
                ("soko-granian", "kernel.asgi:app", project.environment(), project.root),
            ]:
                pgid, port, logs[name] = stack.enter_context(granian(name, app, env, cwd, workdir))
                servers[name] = (pgid, port)
        for name, (_, port) in servers.items():
            check(f"http://127.0.0.1:{port}", name, logs[name], None if name.startswith("hand") else carts.pop())
        samples = []
        names = list(servers)
        for round_ in range(1, args.rounds + 1):
            shift = (round_ - 1) % len(names)
            order = names[shift:] + names[:shift]
            for route in ROUTES:
                for name in order:
                    samples.append(measure(name, *servers[name], route, round_, args, report))
            for name in [] if args.no_checkout else [name for name in order if not name.startswith("hand")]:
                samples.append(measure(name, *servers[name], "checkout", round_, args, checkout))
        print(f"load average after: {' '.join(f'{n:.2f}' for n in os.getloadavg())}")
        table(samples, names)
    return 0


if __name__ == "__main__":
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    sys.exit(main())
