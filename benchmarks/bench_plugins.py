"""What the ratelimit and security plugins cost: requests/s with both on against both off, as ratios in one run.

    .venv/bin/python benchmarks/bench_plugins.py            # defaults: 3 rounds x 10 s, 64 connections

Three servers, all `/healthz` (a route that touches nothing), started and measured exactly as bench_kernel.py does
(same hypercorn settings as `soko serve`, interleaved rounds, wrk, server CPU per request):

- `off`: soko without plugins;
- `on`: ratelimit and security with their shipped config: `/healthz` is no policy's route, so this is the cost
  on a trivial route (security headers and a CSP nonce, a policy lookup that matches nothing);
- `on+limited`: the same plus a policy on `GET /healthz` (client IP key, a limit never reached), so this is the
  cost on a limited route: one Lua script round trip to Redis per request, and the RateLimit fields.

The target (docs/ratelimit.md): `on` keeps at least 70% of `off`'s requests/s. Needs wrk and a Redis.
"""

from __future__ import annotations

import argparse
import json
import shutil
import signal
import statistics
import sys
import tempfile
from contextlib import ExitStack
from pathlib import Path

from bench_kernel import WRK_REPORT, Sample, Target, machine, measure, running, settings_root, soko_says

TARGET_RATIO = 0.70
METRICS = ("rps", "p50_ms", "p99_ms", "cpu_us")
PLUGINS = ["ratelimit", "security"]
# Never reached at wrk's rate, so every request is counted and admitted (the sliding log holds ~1 s of them).
BENCH_POLICY = {
    "name": "bench",
    "routes": ["GET /healthz"],
    "limit": 100_000,
    "window_seconds": 1,
    "keys": ["client_ip"],
}


def targets(root: Path, redis_url: str) -> list[Target]:
    from plugins.ratelimit.settings import DEFAULT_POLICIES

    base = {"SOKO_ENV": "production", "SOKO_ROOT": str(root), "SOKO_QUEUE_NAME": "soko-bench"}
    on = base | {"SOKO_PLUGINS__ENABLED": json.dumps(PLUGINS), "SOKO_REDIS_URL": redis_url}
    policies = [policy.model_dump(mode="json") for policy in DEFAULT_POLICIES] + [BENCH_POLICY]
    limited = on | {"SOKO_PLUGINS__RATELIMIT__POLICIES": "@json " + json.dumps(policies)}
    return [
        Target("off", "kernel.asgi:app", base),
        Target("on", "kernel.asgi:app", on, plugins=tuple(PLUGINS)),
        Target("on+limited", "kernel.asgi:app", limited, plugins=tuple(PLUGINS)),
    ]


def report(samples: list[Sample], names: list[str]) -> dict[str, float]:
    """Medians per config, and each config's req/s as a ratio of `off` (of medians, and median of same-round ratios)."""
    by = {name: [s for s in samples if s.target == name] for name in names}
    off_rps = statistics.median(s.rps for s in by["off"])
    print("\n| config | req/s (median) | p50 ms | p99 ms | server CPU us/req | req/s vs off | paired vs off |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    ratios = {}
    for name in names:
        rps, p50, p99, cpu = (statistics.median(getattr(s, metric) for s in by[name]) for metric in METRICS)
        paired = statistics.median(s.rps / next(o.rps for o in by["off"] if o.round == s.round) for s in by[name])
        ratios[name] = rps / off_rps
        print(f"| {name} | {rps:.0f} | {p50:.2f} | {p99:.2f} | {cpu:.0f} | {ratios[name]:.1%} | {paired:.1%} |")
    return ratios


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=float, default=10.0, help="seconds measured per run (default 10)")
    parser.add_argument("--warmup", type=float, default=3.0, help="seconds of load discarded before each run")
    parser.add_argument("--connections", type=int, default=64, help="keep-alive connections (default 64)")
    parser.add_argument("--threads", type=int, default=1, help="wrk threads (default 1: one core for the server)")
    parser.add_argument("--rounds", type=int, default=3, help="interleaved rounds; medians are reported")
    parser.add_argument("--redis-url", default="redis://127.0.0.1:6379/0", help="where the limits are counted")
    parser.add_argument("--enforce", action="store_true", help=f"exit 1 when `on` is under {TARGET_RATIO:.0%} of off")
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        raise SystemExit("wrk not found: apt-get install -y wrk")

    with ExitStack() as stack:
        workdir = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="soko-bench-plugins-")))
        script = workdir / "report.lua"
        script.write_text(WRK_REPORT)
        chosen = targets(settings_root(workdir), args.redis_url)
        print(" ".join(f"{key}={value!r}" for key, value in machine().items()))
        print(f"command: {' '.join([sys.executable, *sys.argv])}")
        for target in chosen:
            print(f"{target.name}: {soko_says(target.env)}")
        servers = [stack.enter_context(running(target, workdir)) for target in chosen]
        samples = []
        for round_ in range(1, args.rounds + 1):
            shift = (round_ - 1) % len(servers)  # each round starts one config later: drift hits all alike
            for server in servers[shift:] + servers[:shift]:
                samples.append(measure(server, round_, args, script))
        ratios = report(samples, [target.name for target in chosen])
    verdict = "PASS" if ratios["on"] >= TARGET_RATIO else "FAIL"
    print(
        f"\nratelimit+security on the trivial route: {ratios['on']:.1%} of off (target >= {TARGET_RATIO:.0%}): "
        f"{verdict}; on a limited route: {ratios['on+limited']:.1%}"
    )
    return 1 if args.enforce and verdict == "FAIL" else 0


if __name__ == "__main__":
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # unwind the ExitStack: servers must not outlive us
    sys.exit(main())
