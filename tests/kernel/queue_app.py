"""The broker and tasks that test_queue.py runs in real `taskiq worker` processes.

Configured by environment so each test gets its own stream: SOKO_TEST_REDIS_URL, SOKO_TEST_QUEUE,
SOKO_TEST_IDLE_TIMEOUT_MS; SOKO_TEST_WORKER_NAME says which worker recorded a result. SOKO_TEST_REDIS_MODE and
SOKO_TEST_REDIS_SERVICE put it on a Redis Cluster or behind Sentinels (tests/e2e/test_distributed_redis.py).
"""

import asyncio
import json
import os

from opentelemetry import trace
from taskiq import AsyncBroker

from kernel.context import request_id_var, tenant_id_var, user_id_var
from kernel.queue import create_broker
from kernel.redis_client import RedisClient, redis_client
from kernel.settings import KernelSettings

REDIS_URL = os.environ.get("SOKO_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")
REDIS = KernelSettings(
    redis_url=REDIS_URL,  # type: ignore[arg-type]
    redis_mode=os.environ.get("SOKO_TEST_REDIS_MODE", "standalone"),  # type: ignore[arg-type]
    redis_sentinel_service=os.environ.get("SOKO_TEST_REDIS_SERVICE"),
)


def client(settings: KernelSettings = REDIS) -> RedisClient:
    """A client for the configured Redis, built the way the kernel builds its own."""
    return redis_client(settings)


# Short, so a worker notices an idle pending job soon after idle_timeout.
XREAD_BLOCK_MS = 500


def build_broker(queue_name: str, idle_timeout_ms: int, redis: KernelSettings = REDIS) -> AsyncBroker:
    """The worker's broker and the tests' producer broker, so both register the same task names."""
    broker = create_broker(
        client(redis),
        queue_name=queue_name,
        idle_timeout_ms=idle_timeout_ms,
        xread_block_ms=XREAD_BLOCK_MS,
        replicas=redis.queue_replicas,
    )

    @broker.task(task_name="soko_test.record_context")
    async def record_context(key: str) -> None:
        """Store the context the job ran with under `key`."""
        seen = {
            "request_id": request_id_var.get(),
            "tenant_id": tenant_id_var.get(),
            "user_id": user_id_var.get(),
            "trace_id": format(trace.get_current_span().get_span_context().trace_id, "032x"),
        }
        async with client() as redis:
            await redis.set(key, json.dumps(seen))

    @broker.task(task_name="soko_test.hang_on")
    async def hang_on(key: str, hang_on_worker: str) -> None:
        """Record each start; hang on `hang_on_worker` (the test SIGKILLs it), elsewhere record the finish."""
        worker = os.environ["SOKO_TEST_WORKER_NAME"]
        async with client() as redis:
            await redis.rpush(f"{key}:started", worker)
            if worker == hang_on_worker:
                await asyncio.sleep(3600)
            await redis.rpush(f"{key}:finished", worker)

    @broker.task(task_name="soko_test.append")
    async def append(path: str, line: str) -> None:
        """Append `line` to the file at `path`: a record of the job's run that lives outside Redis, so a Redis
        failover cannot lose it."""
        with open(path, "a") as record:
            record.write(line + "\n")

    return broker


broker = build_broker(
    os.environ.get("SOKO_TEST_QUEUE", "soko-test"), int(os.environ.get("SOKO_TEST_IDLE_TIMEOUT_MS", "1500"))
)
