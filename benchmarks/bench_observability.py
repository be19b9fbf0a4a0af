"""What metrics and tracing cost per request: the same soko tenant route with metrics off, on, and on with tracing.

    .venv/bin/python benchmarks/bench_observability.py     # defaults: 3 rounds x 10 s, 64 connections

The route, database, servers and load are bench_tenancy.py's (`GET /items` for `bench.localhost`: the tenancy
plugin resolves the tenant from its cache, the view reads 20 rows in the tenant's transaction), three ways:

- `metrics-off`: the request metrics replaced by a no-op (the baseline; soko itself has no switch for them);
- `metrics-on`: as `soko serve` runs it: prometheus-client's multiprocess mode, values in memory-mapped files in
  `PROMETHEUS_MULTIPROC_DIR`, tracing off (no OTEL_* variable);
- `tracing-1.0`: metrics on, plus tracing with `OTEL_TRACES_SAMPLER=always_on`, exported over OTLP/HTTP to a
  sink in this process that answers 200 to every batch (one SERVER span and one span per SQL statement).

Target: metrics on keeps at least 95% of the baseline's req/s. Tracing is measured and recorded, not bounded.
"""

from __future__ import annotations

import argparse
import signal
import statistics
import sys
import tempfile
import threading
from contextlib import ExitStack
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from bench_kernel import WRK_REPORT, Sample, Target, machine, running
from bench_tenancy import check_answer, measure, scratch_database, soko_app
from quart import Quart

TARGET_RATIO = 0.95
NAMES = ("metrics-off", "metrics-on", "tracing-1.0")


class _NoMetrics:
    def started(self) -> None:
        return None

    def finished(self, *args: Any) -> None:
        return None


def metrics_off_app() -> Quart:
    """bench_tenancy's soko app with the per-request metrics calls made no-ops."""
    app = soko_app()
    app.request_metrics = _NoMetrics()  # type: ignore[attr-defined]
    return app


def traced_app() -> Quart:
    """bench_tenancy's soko app in a process whose OTEL_* variables turn tracing on (as kernel/asgi.py does)."""
    from kernel import tracing

    tracing.configure("web")
    return soko_app()


class _Sink(BaseHTTPRequestHandler):
    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length", 0)))
        self.send_response(200)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args: Any) -> None:
        return None


def report(samples: list[Sample]) -> float:
    by = {name: [s for s in samples if s.target == name] for name in NAMES}
    base = statistics.median(s.rps for s in by[NAMES[0]])
    print("\n| config | req/s (median) | p50 ms | p99 ms | server CPU us/req | req/s vs metrics-off | paired |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    for name, runs in by.items():
        rps = statistics.median(s.rps for s in runs)
        paired = statistics.median(s.rps / next(b.rps for b in by[NAMES[0]] if b.round == s.round) for s in runs)
        print(
            f"| {name} | {rps:.0f} | {statistics.median(s.p50_ms for s in runs):.2f} "
            f"| {statistics.median(s.p99_ms for s in runs):.2f} | {statistics.median(s.cpu_us for s in runs):.0f} "
            f"| {rps / base:.1%} | {paired:.1%} |"
        )
    return statistics.median(s.rps for s in by[NAMES[1]]) / base


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=float, default=10.0)
    parser.add_argument("--warmup", type=float, default=3.0)
    parser.add_argument("--connections", type=int, default=64)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--admin-url", default="postgresql://postgres@127.0.0.1:5432/postgres", help="a superuser")
    parser.add_argument("--redis-url", default="redis://127.0.0.1:6379/0")
    parser.add_argument("--enforce", action="store_true", help=f"exit 1 when metrics-on is under {TARGET_RATIO:.0%}")
    args = parser.parse_args()

    with ExitStack() as stack:
        workdir = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="soko-bench-obs-")))
        script = workdir / "report.lua"
        script.write_text(WRK_REPORT)
        sink = ThreadingHTTPServer(("127.0.0.1", 0), _Sink)
        threading.Thread(target=sink.serve_forever, daemon=True).start()
        stack.callback(sink.shutdown)
        env = stack.enter_context(scratch_database(args.admin_url, args.redis_url, workdir))
        print(" ".join(f"{key}={value!r}" for key, value in machine().items()))
        print(f"command: {' '.join([Path(sys.executable).name, *sys.argv])}")
        multiproc = {"PROMETHEUS_MULTIPROC_DIR": tempfile.mkdtemp(dir=workdir)}
        otel = {
            "OTEL_EXPORTER_OTLP_ENDPOINT": f"http://127.0.0.1:{sink.server_address[1]}",
            "OTEL_TRACES_SAMPLER": "always_on",
            "PROMETHEUS_MULTIPROC_DIR": tempfile.mkdtemp(dir=workdir),
        }
        chosen = [
            Target(NAMES[0], "bench_observability:metrics_off_app()", env, plugins=("tenancy",)),
            Target(NAMES[1], "bench_tenancy:soko_app()", env | multiproc, plugins=("tenancy",)),
            Target(NAMES[2], "bench_observability:traced_app()", env | otel, plugins=("tenancy",)),
        ]
        servers = [stack.enter_context(running(target, workdir)) for target in chosen]
        for server in servers:
            check_answer(server)
        samples = []
        for round_ in range(1, args.rounds + 1):
            shift = (round_ - 1) % len(servers)
            for server in servers[shift:] + servers[:shift]:
                samples.append(measure(server, round_, args, script))
        ratio = report(samples)
        written = list(Path(multiproc["PROMETHEUS_MULTIPROC_DIR"]).glob("*.db"))
        print(f"metrics-on wrote {len(written)} multiprocess value files (proof the mmap mode was on)")
    verdict = "PASS" if ratio >= TARGET_RATIO else "FAIL"
    print(f"\nmetrics on, tracing off: {ratio:.1%} of metrics-off req/s (target >= {TARGET_RATIO:.0%}): {verdict}")
    return 1 if args.enforce and verdict == "FAIL" else 0


if __name__ == "__main__":
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    sys.exit(main())
