"""Checkout throughput: `POST /checkout` requests per second and latency at 32 concurrent clients.

    .venv/bin/python benchmarks/bench_checkout.py --admin-url postgresql://postgres@127.0.0.1:5432/postgres \
        --redis-url redis://127.0.0.1:6379/0 [--seconds 15] [--clients 32] [--processes 1]

The load driver is an httpx.AsyncClient (one connection pool, `--clients` asyncio tasks each keeping one request in
flight, closed loop): wrk cannot easily hand out a fresh cart per request, and every checkout consumes its cart.
Each request carries a fresh Idempotency-Key (uuid4), so every request is a first use: the claim transaction, the
checkout transaction (cart, one conditional UPDATE per line, order and lines, the idempotency record) and nothing
replayed. `server_cpu_us_per_request` is the soko process group's CPU per request (not PostgreSQL's), a figure
that depends less on how busy the machine is than req/s does. The server is `soko serve` with tenancy, auth, outbox,
idempotency and commerce enabled, on a scratch database that is dropped at the end; carts (2 lines each) are
seeded beforehand with SQL so only checkouts are measured.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path

import asyncpg
import httpx

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from bench_kernel import group_cpu_s  # noqa: E402

from kernel.testing.project import Project  # noqa: E402
from kernel.testing.services import create_database, drop_database  # noqa: E402

SKUS = ("bench-a", "bench-b")


async def seed(owner_url: str, carts: int) -> tuple[str, list[str]]:
    """A tenant, two products with stock to spare, and `carts` carts of one unit of each."""
    connection = await asyncpg.connect(owner_url)
    try:
        tenant = await connection.fetchval("INSERT INTO tenants (slug, name) VALUES ('bench', 'Bench') RETURNING id")
        products = [
            await connection.fetchval(
                "INSERT INTO products (tenant_id, sku, name, price_minor, currency) VALUES ($1, $2, $2, 1000, 'KES') "
                "RETURNING id",
                tenant,
                sku,
            )
            for sku in SKUS
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
        return str(tenant), [str(cart_id) for cart_id in ids]
    finally:
        await connection.close()


async def drive(base_url: str, carts: list[str], clients: int, warmup: float, seconds: float) -> dict[str, float]:
    """Closed-loop load: `clients` tasks, each posting checkouts back to back; only the measured window counts."""
    queue = iter(carts)
    latencies: list[float] = []
    statuses: dict[int, int] = {}
    sent = 0
    start = time.monotonic()
    measure_from, stop_at = start + warmup, start + warmup + seconds
    limits = httpx.Limits(max_connections=clients, max_keepalive_connections=clients)

    async def client(http: httpx.AsyncClient) -> None:
        nonlocal sent
        while time.monotonic() < stop_at:
            cart = next(queue)
            began = time.monotonic()
            response = await http.post(
                "/checkout",
                headers={"Host": "bench.localhost", "Idempotency-Key": str(uuid.uuid4())},
                json={"cart_id": cart, "customer_phone": "+254712345678"},
            )
            ended = time.monotonic()
            sent += 1
            if began >= measure_from and ended <= stop_at:
                latencies.append(ended - began)
                statuses[response.status_code] = statuses.get(response.status_code, 0) + 1

    async with httpx.AsyncClient(base_url=base_url, timeout=60, limits=limits) as http:
        await asyncio.gather(*(client(http) for _ in range(clients)))
    latencies.sort()
    return {
        "requests": len(latencies),
        "rps": len(latencies) / seconds,
        "p50_ms": statistics.median(latencies) * 1000,
        "p99_ms": latencies[int(len(latencies) * 0.99) - 1] * 1000,
        "statuses": statuses,  # type: ignore[dict-item]
        "sent": sent,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--admin-url", default="postgresql://postgres@127.0.0.1:5432/postgres")
    parser.add_argument("--redis-url", default="redis://127.0.0.1:6379/0")
    parser.add_argument("--clients", type=int, default=32)
    parser.add_argument("--seconds", type=float, default=15)
    parser.add_argument("--warmup", type=float, default=3)
    parser.add_argument("--processes", type=int, default=1)
    parser.add_argument("--carts", type=int, default=40_000)
    parser.add_argument("--without-idempotency", action="store_true", help="the same checkout, plugin disabled")
    args = parser.parse_args()
    database = asyncio.run(create_database(args.admin_url))
    try:
        with tempfile.TemporaryDirectory() as root:
            project = Project(Path(root))
            project.env = {
                "SOKO_DATABASE_URL": database.app_url,
                "SOKO_DATABASE_OWNER_URL": database.owner_url,
                "SOKO_REDIS_URL": args.redis_url,
                "SOKO_QUEUE_NAME": f"soko-bench-{uuid.uuid4().hex[:8]}",
                "SOKO_ENV": "production",
                "SOKO_LOG_LEVEL": "WARNING",
            }
            shop = ["tenancy", "auth", "outbox", "commerce"]  # commerce requires auth, whose codes go through outbox
            enabled = shop if args.without_idempotency else [*shop, "idempotency"]
            project.settings(enabled)
            project.plugin_config("tenancy", {"base_domains": ["localhost"]})
            migrated = project.run("migrate")
            if migrated.returncode != 0:
                raise SystemExit(migrated.stdout + migrated.stderr)
            _, carts = asyncio.run(seed(database.owner_url, args.carts))
            with project.serve("--workers", str(args.processes)) as server:
                cpu_before = group_cpu_s(server.process.pid)
                result = asyncio.run(drive(server.base_url, carts, args.clients, args.warmup, args.seconds))
                # Server CPU per request (warm-up included) does not depend on what other jobs leave free.
                cpu_s = group_cpu_s(server.process.pid) - cpu_before
                result["server_cpu_us_per_request"] = cpu_s / result["sent"] * 1e6
    finally:
        asyncio.run(drop_database(args.admin_url, database))
    setup = {"clients": args.clients, "processes": args.processes, "seconds": args.seconds, "plugins": enabled}
    print(json.dumps(setup | result))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
