"""M-Pesa callback acknowledgement: latency (p50, p99) and callbacks/s while the worker applies them.

    .venv/bin/python benchmarks/bench_callbacks.py --admin-url postgresql://postgres@127.0.0.1:5432/postgres \
        --redis-url redis://127.0.0.1:6379/0 [--seconds 15] [--clients 16] [--processes 1]

What a callback costs Safaricom's side: `POST /webhooks/payments/mpesa/<token>` verifies the per-tenant token and
the body, stores the event in the kernel's webhook inbox, enqueues its job and only then answers
`{"ResultCode": 0}`. A `soko worker` runs beside the server the whole time, applying the jobs (tenant transaction,
intent transition, order paid), so the acknowledgements are measured with the worker busy on the same box and the
same database. Every request is a first delivery of a distinct STK result for a seeded `pending` intent (amount and
phone matching), posted by `--clients` asyncio tasks in a closed loop (httpx, one pool). After the load, the script
waits for the worker to drain and reports how many callbacks per second it applied end to end.

Settings: tenancy, auth, outbox, commerce, payments_mpesa and payments (no ratelimit: its webhooks policy would
limit one loopback address to 60 a minute), SOKO_ENV=test with log level WARNING, on a scratch database dropped at
the end. `server_cpu_us_per_request` is the server process group's CPU per request.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import secrets
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import asyncpg
import httpx

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from bench_kernel import group_cpu_s  # noqa: E402

from kernel import webhook_tokens  # noqa: E402
from kernel.testing.project import Project  # noqa: E402
from kernel.testing.services import SESSION_CREDENTIALS_KEYS, create_database, drop_database  # noqa: E402

PHONE = 254712345678
PRICE = 1000  # KES 10.00


async def seed(owner_url: str, intents: int) -> tuple[str, list[str]]:
    """A tenant, one product, and `intents` pending orders each with a pending intent; their CheckoutRequestIDs."""
    connection = await asyncpg.connect(owner_url)
    try:
        tenant = await connection.fetchval("INSERT INTO tenants (slug, name) VALUES ('bench', 'Bench') RETURNING id")
        product = await connection.fetchval(
            "INSERT INTO products (tenant_id, sku, name, price_minor, currency) VALUES ($1, 'chai', 'Chai', $2, 'KES') "
            "RETURNING id",
            tenant,
            PRICE,
        )
        await connection.execute(
            "INSERT INTO inventory (tenant_id, product_id, on_hand, reserved) VALUES ($1, $2, $3, $3)",
            tenant,
            product,
            intents,
        )
        carts = await connection.fetch(
            "INSERT INTO carts (tenant_id, currency, status) SELECT $1, 'KES', 'checked_out' "
            "FROM generate_series(1, $2) RETURNING id",
            tenant,
            intents,
        )
        orders = await connection.fetch(
            "INSERT INTO orders (tenant_id, cart_id, status, customer_phone, currency, total_minor, expires_at) "
            "SELECT $1, c, 'pending_payment', '+254712345678', 'KES', $3, now() + interval '1 day' "
            "FROM unnest($2::uuid[]) c RETURNING id",
            tenant,
            [row["id"] for row in carts],
            PRICE,
        )
        order_ids = [row["id"] for row in orders]
        await connection.execute(
            "INSERT INTO order_lines (tenant_id, order_id, product_id, sku, name, quantity, unit_price_minor) "
            "SELECT $1, o, $3, 'chai', 'Chai', 1, $4 FROM unnest($2::uuid[]) o",
            tenant,
            order_ids,
            product,
            PRICE,
        )
        refs = [f"ws_CO_bench{index:08d}{secrets.token_hex(4)}" for index in range(intents)]
        await connection.execute(
            "INSERT INTO payment_intents (tenant_id, order_id, amount, currency, provider, provider_ref, phone, "
            "status, idempotency_key, attempts, pending_at) "
            "SELECT $1, o, $3, 'KES', 'mpesa', r, '+254712345678', 'pending', 'k-' || r, 1, now() "
            "FROM unnest($2::uuid[], $4::text[]) AS t(o, r)",
            tenant,
            order_ids,
            PRICE,
            refs,
        )
        return str(tenant), refs
    finally:
        await connection.close()


def callback(ref: str) -> dict[str, Any]:
    """An STK result as Daraja sends it: paid, with the intent's amount and phone."""
    return {
        "Body": {
            "stkCallback": {
                "MerchantRequestID": f"29115-{secrets.randbelow(10**8)}-1",
                "CheckoutRequestID": ref,
                "ResultCode": 0,
                "ResultDesc": "The service request is processed successfully.",
                "CallbackMetadata": {
                    "Item": [
                        {"Name": "Amount", "Value": PRICE / 100},
                        {"Name": "MpesaReceiptNumber", "Value": "R" + secrets.token_hex(5).upper()[:9]},
                        {"Name": "Balance"},
                        {"Name": "TransactionDate", "Value": 20261203101500},
                        {"Name": "PhoneNumber", "Value": PHONE},
                    ]
                },
            }
        }
    }


async def drive(url: str, refs: list[str], clients: int, warmup: float, seconds: float) -> dict[str, Any]:
    queue = iter(refs)
    latencies: list[float] = []
    statuses: dict[int, int] = {}
    sent = 0
    start = time.monotonic()
    measure_from, stop_at = start + warmup, start + warmup + seconds
    limits = httpx.Limits(max_connections=clients, max_keepalive_connections=clients)

    async def client(http: httpx.AsyncClient) -> None:
        nonlocal sent
        while time.monotonic() < stop_at:
            body = callback(next(queue))
            began = time.monotonic()
            response = await http.post(url, json=body)
            ended = time.monotonic()
            sent += 1
            if began >= measure_from and ended <= stop_at:
                latencies.append(ended - began)
                statuses[response.status_code] = statuses.get(response.status_code, 0) + 1

    async with httpx.AsyncClient(timeout=60, limits=limits) as http:
        await asyncio.gather(*(client(http) for _ in range(clients)))
    latencies.sort()
    return {
        "acks": len(latencies),
        "acks_per_s": len(latencies) / seconds,
        "p50_ms": statistics.median(latencies) * 1000,
        "p99_ms": latencies[max(0, int(len(latencies) * 0.99) - 1)] * 1000,
        "statuses": statuses,
        "sent": sent,
    }


async def drained(owner_url: str, sent: int, timeout: float) -> tuple[int, float]:
    """Wait until the worker applied every sent callback (or `timeout`); (applied, seconds waited)."""
    connection = await asyncpg.connect(owner_url)
    started = time.monotonic()
    try:
        while True:
            applied = await connection.fetchval("SELECT count(*) FROM payment_intents WHERE status = 'succeeded'")
            if applied >= sent or time.monotonic() - started > timeout:
                return int(applied), time.monotonic() - started
            await asyncio.sleep(0.2)
    finally:
        await connection.close()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--admin-url", default="postgresql://postgres@127.0.0.1:5432/postgres")
    parser.add_argument("--redis-url", default="redis://127.0.0.1:6379/0")
    parser.add_argument("--clients", type=int, default=16)
    parser.add_argument("--seconds", type=float, default=15)
    parser.add_argument("--warmup", type=float, default=3)
    parser.add_argument("--processes", type=int, default=1)
    parser.add_argument("--intents", type=int, default=30_000)
    args = parser.parse_args()
    database = asyncio.run(create_database(args.admin_url))
    secret = secrets.token_hex(32)
    try:
        with tempfile.TemporaryDirectory() as root:
            project = Project(Path(root))
            project.env = {
                "SOKO_DATABASE_URL": database.app_url,
                "SOKO_DATABASE_OWNER_URL": database.owner_url,
                "SOKO_REDIS_URL": args.redis_url,
                "SOKO_QUEUE_NAME": f"soko-bench-{uuid.uuid4().hex[:8]}",
                "SOKO_LOG_LEVEL": "WARNING",
                "SOKO_CREDENTIALS_KEYS": SESSION_CREDENTIALS_KEYS,
                "SOKO_WEBHOOK_TOKEN_SECRET": secret,
            }
            enabled = ["tenancy", "auth", "outbox", "commerce", "payments_mpesa", "payments"]
            project.settings(enabled)
            project.plugin_config("tenancy", {"base_domains": ["localhost"]})
            project.plugin_config("payments_mpesa", {"mode": "simulator", "base_url": "http://127.0.0.1:9"})
            migrated = project.run("migrate")
            if migrated.returncode != 0:
                raise SystemExit(migrated.stdout + migrated.stderr)
            tenant, refs = asyncio.run(seed(database.owner_url, args.intents))
            token = webhook_tokens.token(secret.encode(), "payments", "mpesa", tenant)
            with project.serve("--workers", str(args.processes)) as server, project.worker():
                cpu_before = group_cpu_s(server.process.pid)
                url = f"{server.base_url}/webhooks/payments/mpesa/{token}"
                result = asyncio.run(drive(url, refs, args.clients, args.warmup, args.seconds))
                result["server_cpu_us_per_request"] = (
                    (group_cpu_s(server.process.pid) - cpu_before) / result["sent"] * 1e6
                )
                applied, waited = asyncio.run(drained(database.owner_url, result["sent"], timeout=300))
                load_seconds = args.warmup + args.seconds
                result["applied"] = applied
                result["applied_per_s"] = applied / (load_seconds + waited)
                result["drain_after_load_s"] = waited
    finally:
        asyncio.run(drop_database(args.admin_url, database))
    setup = {"clients": args.clients, "processes": args.processes, "seconds": args.seconds, "plugins": enabled}
    print(json.dumps(setup | result))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
