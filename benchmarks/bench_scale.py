"""Throughput of soko's tenant-scoped read with 1, 2 and 4 web processes, and with 2 behind PgBouncer.

    .venv/bin/python benchmarks/bench_scale.py             # defaults: 3 rounds x 10 s, 64 connections

The read and the servers are bench_tenancy.py's `soko` (tenancy, the kernel's tenant transaction, JSON access log,
production settings); only the number of hypercorn worker processes changes, as `soko serve --workers N` would,
plus one run of 2 processes with `SOKO_DATABASE_POOLER=transaction` through PgBouncer in transaction mode
(kernel/testing/engines.py, `--bouncer-pool` server connections). The rounds are interleaved and medians reported,
with each configuration's req/s relative to 1 process: near-linear up to the cores the machine has (wrk takes
some too), flat beyond. No target is enforced: it depends on the machine's cores, which the script prints.
"""

from __future__ import annotations

import argparse
import os
import signal
import statistics
import sys
import tempfile
from contextlib import ExitStack
from pathlib import Path

from bench_kernel import WRK_REPORT, Sample, Target, machine, running, soko_says
from bench_tenancy import APP_ROLE, check_answer, measure, scratch_database

from kernel.testing.engines import pgbouncer


def report(samples: list[Sample], names: list[str]) -> None:
    base = statistics.median(s.rps for s in samples if s.target == names[0])
    print("\n| configuration | req/s (median) | vs 1 process | p50 ms | p99 ms | server CPU us/req |")
    print("|---|---:|---:|---:|---:|---:|")
    for name in names:
        runs = [s for s in samples if s.target == name]
        rps = statistics.median(s.rps for s in runs)
        print(
            f"| {name} | {rps:.0f} | {rps / base:.2f}x | {statistics.median(s.p50_ms for s in runs):.2f} "
            f"| {statistics.median(s.p99_ms for s in runs):.2f} | {statistics.median(s.cpu_us for s in runs):.0f} |"
        )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=float, default=10.0, help="seconds measured per run (default 10)")
    parser.add_argument("--warmup", type=float, default=3.0, help="seconds of load discarded before each run")
    parser.add_argument("--connections", type=int, default=64, help="keep-alive connections (default 64)")
    parser.add_argument("--threads", type=int, default=1, help="wrk threads (default 1)")
    parser.add_argument("--rounds", type=int, default=3, help="interleaved rounds; medians are reported")
    parser.add_argument("--processes", default="1,2,4", help="web process counts to measure (default 1,2,4)")
    parser.add_argument("--bouncer-pool", type=int, default=4, help="PgBouncer server connections (default 4)")
    parser.add_argument("--admin-url", default="postgresql://postgres@127.0.0.1:5432/postgres", help="a superuser")
    parser.add_argument("--redis-url", default="redis://127.0.0.1:6379/0")
    args = parser.parse_args()

    with ExitStack() as stack:
        workdir = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="soko-bench-scale-")))
        script = workdir / "report.lua"
        script.write_text(WRK_REPORT)
        env = stack.enter_context(scratch_database(args.admin_url, args.redis_url, workdir))
        bouncer = stack.enter_context(
            pgbouncer(env["SOKO_DATABASE_URL"], pool_size=args.bouncer_pool, users={APP_ROLE: APP_ROLE})
        )
        print(" ".join(f"{key}={value!r}" for key, value in machine().items()), f"cpus={os.cpu_count()}")
        print(f"command: {' '.join([Path(sys.executable).name, *sys.argv])}")
        print(f"soko: {soko_says(env)}")
        chosen = [
            Target(f"soko x{count}", "bench_tenancy:soko_app()", env, plugins=("tenancy",), workers=int(count))
            for count in args.processes.split(",")
        ]
        pooled = env | {
            "SOKO_DATABASE_URL": bouncer.url(env["SOKO_DATABASE_URL"]),
            "SOKO_DATABASE_POOLER": "transaction",
        }
        chosen.append(Target("soko x2 pgbouncer", "bench_tenancy:soko_app()", pooled, plugins=("tenancy",), workers=2))
        servers = [stack.enter_context(running(target, workdir)) for target in chosen]
        for server in servers:
            check_answer(server)
        samples = []
        for round_ in range(1, args.rounds + 1):
            shift = (round_ - 1) % len(servers)
            for server in servers[shift:] + servers[:shift]:
                samples.append(measure(server, round_, args, script))
        report(samples, [target.name for target in chosen])
    return 0


if __name__ == "__main__":
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    sys.exit(main())
