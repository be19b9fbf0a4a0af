"""Normal traffic under a slow-body attack (issue 13, item 1): p99 of normal requests while slow clients trickle.

    .venv/bin/python benchmarks/bench_slow_bodies.py --admin-url postgresql://postgres@127.0.0.1:5432/postgres \
        --redis-url redis://127.0.0.1:6379/0 [--slow 200] [--clients 8] [--seconds 8] [--processes 2] [--enforce]

`--slow` clients each send a `POST /carts` head declaring a 64-byte body, then one byte every 3 s, never the last:
they hold a connection and a request until the server's `body_timeout` (10 s) answers them 408. Meanwhile
`--clients` closed-loop clients alternate `POST /carts` and `GET /products` for `--seconds`. Target: p99 of the
normal requests under 1 s, no failure (a 5 s client timeout counts as one), no transaction idle over 1 s. The
server is `soko serve --workers N` with the shop (tenancy, auth, outbox, idempotency, commerce), pool 20 per
process, on a scratch database dropped at the end. The attack is kernel/testing/slow_bodies.py, which the test
(tests/plugins/commerce/test_slow_bodies.py) runs too.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import sys
import tempfile
import uuid
from pathlib import Path

import asyncpg
import httpx

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from kernel.testing import slow_bodies  # noqa: E402
from kernel.testing.project import Project  # noqa: E402
from kernel.testing.services import APP_ROLE, create_database, drop_database  # noqa: E402

TARGET_P99_S = 1.0


async def seed(owner_url: str) -> None:
    connection = await asyncpg.connect(owner_url)
    try:
        tenant = await connection.fetchval("INSERT INTO tenants (slug, name) VALUES ('bench', 'Bench') RETURNING id")
        product = await connection.fetchval(
            "INSERT INTO products (tenant_id, sku, name, price_minor, currency) "
            "VALUES ($1, 'bench-a', 'Bench', 1000, 'KES') RETURNING id",
            tenant,
        )
        await connection.execute(
            "INSERT INTO inventory (tenant_id, product_id, on_hand) VALUES ($1, $2, 1000)", tenant, product
        )
    finally:
        await connection.close()


async def measure(base_url: str, owner_url: str, app_role: str, args: argparse.Namespace) -> slow_bodies.Outcome:
    requests = itertools.cycle([("POST", "/carts", {}), ("GET", "/products", None)])
    observer = await asyncpg.connect(owner_url)
    try:
        async with httpx.AsyncClient(base_url=base_url, timeout=5.0) as http:

            async def normal() -> httpx.Response:
                method, path, body = next(requests)
                return await http.request(method, path, headers={"Host": "bench.localhost"}, json=body)

            attack = slow_bodies.Attack(base_url, "bench.localhost", clients=args.slow)
            return await slow_bodies.run(
                attack,
                normal,
                normal_clients=args.clients,
                normal_for_s=args.seconds,
                observer=observer,
                app_role=app_role,
            )
    finally:
        await observer.close()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--admin-url", default="postgresql://postgres@127.0.0.1:5432/postgres")
    parser.add_argument("--redis-url", default="redis://127.0.0.1:6379/0")
    parser.add_argument("--slow", type=int, default=200)
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--seconds", type=float, default=8)
    parser.add_argument("--processes", type=int, default=2)
    parser.add_argument("--enforce", action="store_true", help="exit 1 when the target is missed")
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
                "SOKO_LOG_LEVEL": "WARNING",
            }
            project.settings(["tenancy", "auth", "outbox", "idempotency", "commerce"], database_pool_max=20)
            project.plugin_config("tenancy", {"base_domains": ["localhost"]})
            project.migrate()
            asyncio.run(seed(database.owner_url))
            with project.serve("--workers", str(args.processes)) as server:
                outcome = asyncio.run(measure(server.base_url, database.owner_url, APP_ROLE, args))
    finally:
        asyncio.run(drop_database(args.admin_url, database))
    passed = (
        outcome.p99_s < TARGET_P99_S
        and not outcome.failures
        and max(outcome.held, default=0) == 0
        and outcome.answers == [(408, "request_timeout")] * args.slow
    )
    setup = {"slow_clients": args.slow, "clients": args.clients, "seconds": args.seconds, "processes": args.processes}
    p99_ms = round(outcome.p99_s * 1000, 1) if outcome.p99_s < float("inf") else None
    print(json.dumps(setup | {"summary": outcome.summary(), "p99_ms": p99_ms, "pass": passed}))
    return 0 if passed or not args.enforce else 1


if __name__ == "__main__":
    raise SystemExit(main())
