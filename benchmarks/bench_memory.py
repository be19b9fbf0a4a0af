"""Resident memory of `soko serve`'s web process idle and after 100,000 requests, and of a `soko worker` process.

    .venv/bin/python benchmarks/bench_memory.py [--requests 100000] [--server hypercorn --server uvicorn]

The project is bench_side_by_side.py's (tenancy, security, ratelimit, auth, outbox, commerce and the benchmark
plugin on a scratch database). Each server serves its requests as wrk runs of `--chunk` seconds rotating over the
three routes (trivial, rate-limited, 20-row RLS read); RSS (VmRSS of /proc/PID/status) of the web process is
printed idle (after one request per route), then after every run, so growth shows as a curve, not one figure.
"""

from __future__ import annotations

import argparse
import itertools
import tempfile
from contextlib import ExitStack
from pathlib import Path

from bench_kernel import WRK_REPORT
from bench_side_by_side import ROUTES, bench_project, check, wrk


def rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise SystemExit(f"no VmRSS for {pid}")


def children(pid: int) -> list[int]:
    """The supervisor's server or worker processes (multiprocessing's resource tracker left out)."""
    found = [int(child) for child in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
    return [child for child in found if b"resource_tracker" not in Path(f"/proc/{child}/cmdline").read_bytes()]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=100_000)
    parser.add_argument("--chunk", type=float, default=10.0, help="seconds per wrk run")
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--server", action="append", help="hypercorn (default) and/or uvicorn")
    parser.add_argument("--admin-url", default="postgresql://postgres@127.0.0.1:5432/postgres")
    parser.add_argument("--redis-url", default="redis://127.0.0.1:6379/0")
    args = parser.parse_args()
    args.carts, args.profile = 10, None
    with ExitStack() as stack:
        workdir = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="soko-bench-memory-")))
        project, _, carts = bench_project(stack, workdir, args)
        script = workdir / "report.lua"
        script.write_text(WRK_REPORT)
        try:
            with project.worker() as worker:
                for pid in children(worker.process.pid):
                    print(f"worker process {pid}: {rss_mib(pid):.1f} MiB idle", flush=True)
        except AssertionError as failed:  # reported, and the web processes are still measured
            print(f"soko worker did not start: {str(failed)[-400:]}", flush=True)
        for server in args.server or ["hypercorn"]:
            with project.serve("--workers", "1", SOKO_SERVER=server) as running:
                port = int(running.base_url.rsplit(":", 1)[1])
                check(running.base_url, server, running.log_path, carts.pop())
                (web,) = children(running.process.pid)
                idle = rss_mib(web)
                print(f"{server} web process {web}: {idle:.1f} MiB idle", flush=True)
                served = 0
                for route in itertools.cycle(ROUTES):
                    served += wrk(port, ROUTES[route], args.chunk, args, script)["requests"]
                    print(f"  after {served:>7} requests: {rss_mib(web):.1f} MiB", flush=True)
                    if served >= args.requests:
                        break
                print(f"{server}: {idle:.1f} MiB idle, {rss_mib(web):.1f} MiB after {served} requests", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
