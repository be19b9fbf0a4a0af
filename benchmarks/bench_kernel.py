"""Kernel overhead: requests/s and latency of `/healthz` on bare Quart, soko, and soko with plugins.

Why one script: the box is small and noisy, so absolute numbers mean little; only ratios measured in the same run,
with the same hypercorn settings and interleaved rounds, say what soko costs per request.

    .venv/bin/python benchmarks/bench_kernel.py            # defaults: 3 rounds x 10 s, 64 connections

Every server runs as `hypercorn.run.run(config)` with the Config `soko serve` builds (kernel/cli.py), in its own
process group, on a free port of 127.0.0.1; all of them are killed on exit, whatever happens. The load comes from
`wrk` (apt-get install wrk). See benchmarks/README.md.
"""

from __future__ import annotations

import argparse
import inspect
import json
import logging
import os
import platform
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager, suppress
from dataclasses import dataclass, field
from datetime import UTC, datetime
from importlib.metadata import version
from pathlib import Path
from typing import Any

BENCH_DIR = Path(__file__).resolve().parent
REPO = BENCH_DIR.parent
TARGET_RATIO = 0.90
# The hypercorn Config attributes `soko serve` sets; `check_serve_config` warns when kernel/cli.py sets others.
SERVE_SETTINGS = {"application_path", "bind", "workers", "accesslog", "errorlog", "include_server_header"}
# wrk's own summary rounds to 2 digits and mixes units; this prints exact microseconds as one JSON line.
WRK_REPORT = """
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    '{"requests": %d, "duration_us": %d, "p50_us": %.1f, "p90_us": %.1f, "p99_us": %.1f, "max_us": %.1f, '
    .. '"errors": {"connect": %d, "read": %d, "write": %d, "status": %d, "timeout": %d}}\\n',
    summary.requests, summary.duration, latency:percentile(50), latency:percentile(90),
    latency:percentile(99), latency.max, e.connect, e.read, e.write, e.status, e.timeout))
end
"""


@dataclass(frozen=True)
class Target:
    """One configuration under test: which ASGI app, with which environment."""

    name: str
    app_path: str
    env: dict[str, str] = field(default_factory=dict)
    soko: bool = True
    plugins: tuple[str, ...] = ()
    workers: int = 1  # hypercorn worker processes, as `soko serve --workers` (bench_scale.py varies it)


@dataclass
class Server:
    """A running hypercorn (supervisor + its workers) in its own process group, logging to `log_path`."""

    target: Target
    port: int
    process: subprocess.Popen[bytes]
    log_path: Path


@dataclass(frozen=True)
class Sample:
    """One wrk measurement of one target."""

    target: str
    round: int
    rps: float
    p50_ms: float
    p99_ms: float
    requests: int
    cpu_us: float  # server CPU (user + system, all its processes) per request: robust to a busy box


def serve(app_path: str, bind: str, workers: int = 1) -> int:
    """Serve `app_path` exactly as `soko serve` would (kernel/cli.py), minus its preflight, which needs a database."""
    from hypercorn.config import Config
    from hypercorn.run import run

    config = Config()
    config.application_path = app_path
    config.bind = [bind]
    config.workers = workers
    config.accesslog = None
    config.errorlog = logging.getLogger("hypercorn.error")  # startup and errors only: no per-request cost
    config.include_server_header = False
    return run(config)


def check_serve_config() -> list[str]:
    """Warn when `soko serve` starts setting hypercorn options this benchmark does not replicate."""
    from kernel import cli

    source = inspect.getsource(cli.serve.callback)  # type: ignore[arg-type]
    used = set(re.findall(r"^\s*config\.(\w+)\s*=", source, re.MULTILINE))
    return [f"kernel/cli.py serve sets config.{name}, which this benchmark does not" for name in used - SERVE_SETTINGS]


def free_port() -> int:
    """A port the kernel says is free now; a rare race with another process is caught by the readiness check."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def settings_root(into: Path) -> Path:
    """A copy of the repository's settings.toml and config/, so a developer's .env cannot add a database."""
    root = into / "root"
    (root / "config").mkdir(parents=True)
    shutil.copy(REPO / "settings.toml", root / "settings.toml")
    for path in (REPO / "config").glob("*.yaml"):
        shutil.copy(path, root / "config" / path.name)
    return root


def clean_env(extra: dict[str, str]) -> dict[str, str]:
    """This process's environment without any SOKO_* (a shell's database URL must not leak in), plus `extra`."""
    env = {key: value for key, value in os.environ.items() if not key.startswith("SOKO_")}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(BENCH_DIR), str(REPO), env.get("PYTHONPATH")]))
    return env | extra


def soko_says(env: dict[str, str]) -> str:
    """`soko config check` and the pipeline `soko plugins` shows, under a target's environment: proves which
    plugins and middleware run, before serving."""
    soko = str(Path(sys.executable).with_name("soko"))
    said = []
    for command in ([soko, "config", "check"], [soko, "plugins"]):
        result = subprocess.run(command, env=clean_env(env), capture_output=True, text=True, timeout=60, check=False)
        if result.returncode != 0:
            raise SystemExit(f"{' '.join(command[1:])} failed for {env}:\n{result.stdout}{result.stderr}")
        said.append(result.stdout.strip().splitlines()[-1])
    return "; ".join(said)


def get(url: str) -> tuple[int, dict[str, str], bytes]:
    """Status, lower-cased headers and body: stdlib only, since the readiness probe needs no speed."""
    with urllib.request.urlopen(url, timeout=2) as response:
        return response.status, {k.lower(): v for k, v in response.headers.items()}, response.read()


@contextmanager
def running(target: Target, workdir: Path) -> Iterator[Server]:
    """Start `target`, wait until `/healthz` answers as expected, and kill its whole process group afterwards."""
    for _attempt in range(3):  # a port taken between free_port() and bind(): try another
        port = free_port()
        log_path = workdir / f"{target.name}.{port}.log"
        with log_path.open("wb") as log:
            process = subprocess.Popen(
                [sys.executable, __file__, "serve", target.app_path, f"127.0.0.1:{port}", str(target.workers)],
                cwd=REPO,
                env=clean_env(target.env),
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        server = Server(target, port, process, log_path)
        try:
            if wait_ready(server):
                yield server
                return
        finally:
            stop(server)
    raise SystemExit(f"{target.name}: could not start a server, see {log_path}")


def wait_ready(server: Server, timeout_s: float = 60.0) -> bool:
    """True once `/healthz` returns soko's body (and soko's X-Request-ID iff this is soko); False if it died."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            return False
        try:
            status, headers, body = get(f"http://127.0.0.1:{server.port}/healthz")
        except OSError:
            time.sleep(0.2)
            continue
        if status != 200 or json.loads(body) != {"status": "ok"}:
            raise SystemExit(f"{server.target.name}: /healthz answered {status} {body!r}")
        if ("x-request-id" in headers) != server.target.soko:
            raise SystemExit(f"{server.target.name}: something else is serving port {server.port}")
        if "server" in headers:
            raise SystemExit(f"{server.target.name}: the server header is on, unlike `soko serve`")
        return True
    raise SystemExit(f"{server.target.name}: not ready after {timeout_s:.0f} s, see {server.log_path}")


def stop(server: Server) -> None:
    """SIGTERM the process group (hypercorn's supervisor and its spawned worker), SIGKILL it if it lingers."""
    if server.process.poll() is None:
        with suppress(ProcessLookupError):
            os.killpg(server.process.pid, signal.SIGTERM)
        with suppress(subprocess.TimeoutExpired):
            server.process.wait(timeout=10)
    with suppress(ProcessLookupError):  # the worker may outlive a supervisor that died first
        os.killpg(server.process.pid, signal.SIGKILL)
    server.process.wait(timeout=10)


def wrk(port: int, seconds: float, connections: int, threads: int, script: Path) -> dict[str, Any]:
    """One closed-loop wrk run against `/healthz`; its Lua `done` prints the exact figures as JSON."""
    command = ["wrk", f"-t{threads}", f"-c{connections}", f"-d{seconds:g}s", "--latency", "-s", str(script)]
    result = subprocess.run(
        [*command, f"http://127.0.0.1:{port}/healthz"],
        capture_output=True,
        text=True,
        timeout=seconds + 60,
        check=True,
    )
    report = json.loads(result.stdout.strip().splitlines()[-1])
    if any(report["errors"].values()):
        raise SystemExit(f"wrk saw errors against port {port}: {report['errors']}\n{result.stdout}")
    return report


def group_cpu_s(pgid: int) -> float:
    """User + system CPU seconds of every live process in a process group (hypercorn's supervisor and worker)."""
    ticks = 0
    for stat in Path("/proc").glob("[0-9]*/stat"):
        with suppress(OSError):
            fields = stat.read_text().rsplit(")", 1)[1].split()
            if int(fields[2]) == pgid:  # fields after "(comm)": state, ppid, pgrp, ..., utime (11), stime (12)
                ticks += int(fields[11]) + int(fields[12])
    return ticks / os.sysconf("SC_CLK_TCK")


def measure(server: Server, round_: int, args: argparse.Namespace, script: Path) -> Sample:
    """Warm up (the server idled while the others ran), then one measured run with the server's CPU around it."""
    wrk(server.port, args.warmup, args.connections, args.threads, script)
    cpu_before = group_cpu_s(server.process.pid)
    report = wrk(server.port, args.duration, args.connections, args.threads, script)
    cpu = group_cpu_s(server.process.pid) - cpu_before
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
        f"  round {round_} {sample.target:<20} {sample.rps:8.0f} req/s  p50 {sample.p50_ms:6.2f} ms  "
        f"p99 {sample.p99_ms:6.2f} ms  server CPU {sample.cpu_us:5.0f} us/req",
        flush=True,
    )
    return sample


def access_lines(log_path: Path) -> int:
    """How many soko access-log records the server wrote: proof the per-request logging was on."""
    with log_path.open("rb") as log:
        return sum(1 for line in log if b'"logger": "soko.access"' in line)


def machine() -> dict[str, str]:
    """What RESULTS.md must record for the figures to mean anything: when, on what, with which versions."""
    cpu = next(
        (
            line.split(":", 1)[1].strip()
            for line in Path("/proc/cpuinfo").read_text().splitlines()
            if "model name" in line
        ),
        platform.processor(),
    )
    wrk_version = subprocess.run(["wrk", "-v"], capture_output=True, text=True, check=False).stdout.split("\n")[0]
    git = ["git", "-C", str(REPO)]
    commit = subprocess.run([*git, "rev-parse", "--short", "HEAD"], capture_output=True, text=True, check=False)
    dirty = subprocess.run([*git, "status", "--porcelain", "kernel"], capture_output=True, text=True, check=False)
    return {
        "date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "nproc": str(os.cpu_count()),
        "cpu": cpu,
        "python": platform.python_version(),
        "versions": ", ".join(f"{name} {version(name)}" for name in ("quart", "hypercorn", "werkzeug", "h11")),
        "wrk": wrk_version.strip(),
        "commit": commit.stdout.strip() + (" (kernel/ has uncommitted changes)" if dirty.stdout.strip() else ""),
    }


def targets(args: argparse.Namespace) -> list[Target]:
    """The three configs; database URLs stay unset, as `/healthz` touches no database."""
    base = {"SOKO_ENV": args.soko_env, "SOKO_PLUGINS__ENABLED": "[]"}  # settings.toml enables plugins per env
    plugins = tuple(name for name in args.plugins.split(",") if name)
    with_plugins = base | {
        "SOKO_PLUGINS__ENABLED": json.dumps(list(plugins)),
        "SOKO_REDIS_URL": args.redis_url,  # plugins' tasks need a broker (and ratelimit its counters)
    }
    if "hello" in plugins:
        with_plugins["SOKO_PLUGINS__HELLO__API_TOKEN"] = "benchmark"  # a required secret of the example plugin
    return [
        Target("bare-quart", "bare_app:app", soko=False),
        Target("soko", "kernel.asgi:app", base),
        Target("soko+" + "+".join(plugins), "kernel.asgi:app", with_plugins, plugins=plugins),
    ]


def report(samples: list[Sample], names: list[str]) -> float:
    """Print medians, ratios to bare Quart (of medians, and median of same-round ratios); return soko's rps ratio."""
    by = {name: [s for s in samples if s.target == name] for name in names}
    bare = names[0]
    bare_rps = statistics.median(s.rps for s in by[bare])
    bare_p99 = statistics.median(s.p99_ms for s in by[bare])
    bare_cpu = statistics.median(s.cpu_us for s in by[bare])
    print(
        "\n| config | req/s (median) | p50 ms | p99 ms | req/s vs bare | paired req/s vs bare | p99 vs bare "
        "| server CPU us/req | bare CPU / CPU |"
    )
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|")
    ratios = {}
    for name in names:
        rps = statistics.median(s.rps for s in by[name])
        p99 = statistics.median(s.p99_ms for s in by[name])
        cpu = statistics.median(s.cpu_us for s in by[name])
        paired = statistics.median(s.rps / next(b.rps for b in by[bare] if b.round == s.round) for s in by[name])
        ratios[name] = rps / bare_rps
        print(
            f"| {name} | {rps:.0f} | {statistics.median(s.p50_ms for s in by[name]):.2f} | {p99:.2f} "
            f"| {rps / bare_rps:.1%} | {paired:.1%} | {p99 / bare_p99:.2f}x "
            f"| {cpu:.0f} | {bare_cpu / cpu:.1%} |"
        )
    return ratios[names[1]]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=float, default=10.0, help="seconds measured per run (default 10)")
    parser.add_argument("--warmup", type=float, default=3.0, help="seconds of load discarded before each run")
    parser.add_argument("--connections", type=int, default=64, help="keep-alive connections (default 64)")
    parser.add_argument("--threads", type=int, default=1, help="wrk threads (default 1: one core for the server)")
    parser.add_argument("--rounds", type=int, default=3, help="interleaved rounds; medians are reported")
    parser.add_argument("--plugins", default="hello", help="comma-separated plugins of the third config")
    parser.add_argument("--redis-url", default="redis://127.0.0.1:6379/0", help="for plugins that register tasks")
    parser.add_argument("--soko-env", default="production", help="SOKO_ENV of the soko configs")
    parser.add_argument("--enforce", action="store_true", help=f"exit 1 when soko is under {TARGET_RATIO:.0%} of bare")
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        raise SystemExit("wrk not found: apt-get install -y wrk")
    for warning in check_serve_config():
        print(f"WARNING: {warning}", file=sys.stderr)

    with ExitStack() as stack:
        workdir = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="soko-bench-")))
        script = workdir / "report.lua"
        script.write_text(WRK_REPORT)
        root = settings_root(workdir)
        chosen = [
            Target(t.name, t.app_path, t.env | {"SOKO_ROOT": str(root)}, t.soko, t.plugins) if t.soko else t
            for t in targets(args)
        ]
        info = machine()
        print(" ".join(f"{key}={value!r}" for key, value in info.items()))
        python = os.path.relpath(sys.executable, REPO) if sys.executable.startswith(str(REPO)) else sys.executable
        print(f"command: {' '.join([python, *sys.argv])}")
        for target in chosen:
            if target.soko:
                print(f"{target.name}: {soko_says(target.env)}")
        servers = [stack.enter_context(running(target, workdir)) for target in chosen]
        samples = []
        for round_ in range(1, args.rounds + 1):
            # Interleaved, and each round starts one config later, so drift on the box hits every config alike.
            shift = (round_ - 1) % len(servers)
            for server in servers[shift:] + servers[:shift]:
                samples.append(measure(server, round_, args, script))
        for server in servers[1:]:
            served = sum(s.requests for s in samples if s.target == server.target.name)
            logged = access_lines(server.log_path)
            print(f"{server.target.name}: {logged} access-log lines for {served} measured requests")
        ratio = report(samples, [s.target.name for s in servers])
    verdict = "PASS" if ratio >= TARGET_RATIO else "FAIL"
    print(f"\nsoko without plugins: {ratio:.1%} of bare Quart's req/s (target >= {TARGET_RATIO:.0%}): {verdict}")
    return 1 if args.enforce and verdict == "FAIL" else 0


if __name__ == "__main__":
    if len(sys.argv) == 5 and sys.argv[1] == "serve":
        sys.exit(serve(sys.argv[2], sys.argv[3], int(sys.argv[4])))
    # SIGTERM (e.g. `timeout`) must unwind through the ExitStack, or the servers would outlive us.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    sys.exit(main())
