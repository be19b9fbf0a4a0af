"""kernel.queue against a real Redis and real `taskiq worker` processes (tests/kernel/queue_app.py)."""

import asyncio
import contextvars
import json
import logging
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import NonRecordingSpan, SpanContext, SpanKind, StatusCode, TraceFlags
from redis.asyncio import Redis
from taskiq import AsyncBroker, TaskiqMessage
from taskiq_redis import RedisStreamBroker

from kernel import inbox
from kernel.context import request_id_var, tenant_id_var
from kernel.queue import ContextMiddleware, create_broker
from kernel.testing.project import free_port
from tests.kernel.conftest import KernelFactory
from tests.kernel.queue_app import REDIS_URL, build_broker

ROOT = Path(__file__).resolve().parents[2]
IDLE_TIMEOUT_MS = 1500


@pytest.fixture
def queue() -> str:
    """A stream name of this test's own, so concurrent runs do not share jobs."""
    return f"soko-test-{uuid.uuid4().hex}"


@pytest.fixture
async def redis(queue: str) -> AsyncIterator[Redis]:
    """A client; deletes the test's stream and every key it prefixed with the stream name."""
    client = Redis.from_url(REDIS_URL)
    try:
        yield client
    finally:
        keys = [key async for key in client.scan_iter(match=f"{queue}*")]
        if keys:
            await client.delete(*keys)
        await client.aclose()


@pytest.fixture
async def producer(queue: str) -> AsyncIterator[AsyncBroker]:
    """The enqueuing side, started: startup() creates the consumer group, which starts at `$`, so a job
    enqueued before the group exists would never be delivered."""
    broker = build_broker(queue, IDLE_TIMEOUT_MS)
    await broker.startup()
    try:
        yield broker
    finally:
        await broker.shutdown()


@contextmanager
def queue_app_workers(env: Mapping[str, str], log_dir: Path) -> Iterator[Callable[[str], subprocess.Popen[bytes]]]:
    """Starts `taskiq worker` processes of tests/kernel/queue_app.py in their own process groups, with `env` and
    the worker's name; SIGKILLs every group at the end."""
    workers: list[subprocess.Popen[bytes]] = []

    def start(name: str) -> subprocess.Popen[bytes]:
        with (log_dir / f"worker-{name}.log").open("wb") as log:
            # cwd=ROOT: taskiq puts the cwd on sys.path to import tests.kernel.queue_app.
            worker = subprocess.Popen(
                [sys.executable, "-m", "taskiq", "worker", "tests.kernel.queue_app:broker", "--workers", "1"],
                cwd=ROOT,
                env={**os.environ, **env, "SOKO_TEST_WORKER_NAME": name},
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        workers.append(worker)
        return worker

    try:
        yield start
    finally:
        for worker in workers:
            kill_group(worker)


@pytest.fixture
def start_worker(queue: str, tmp_path: Path) -> Iterator[Callable[[str], subprocess.Popen[bytes]]]:
    env = {
        "SOKO_TEST_REDIS_URL": REDIS_URL,
        "SOKO_TEST_QUEUE": queue,
        "SOKO_TEST_IDLE_TIMEOUT_MS": str(IDLE_TIMEOUT_MS),
    }
    with queue_app_workers(env, tmp_path) as start:
        yield start


def kill_group(worker: subprocess.Popen[bytes]) -> None:
    """SIGKILL the worker's supervisor and its worker child together, as an OOM kill or node loss would."""
    try:
        os.killpg(worker.pid, signal.SIGKILL)
    except ProcessLookupError:
        return
    worker.wait(timeout=10)


async def poll(check: Callable[[], Awaitable[Any]], deadline_s: float) -> Any:
    """The first truthy result of `check`, or fail once the deadline passes."""
    deadline = time.monotonic() + deadline_s
    while not (result := await check()):
        if time.monotonic() > deadline:
            pytest.fail(f"condition not met within {deadline_s} s")
        await asyncio.sleep(0.05)
    return result


async def test_job_runs_with_the_enqueuers_context(
    queue: str, redis: Redis, producer: AsyncBroker, start_worker: Callable[[str], Any]
) -> None:
    trace_id = uuid.uuid4().int
    parent = SpanContext(trace_id, 0x1234, is_remote=False, trace_flags=TraceFlags(TraceFlags.SAMPLED))
    record = producer.find_task("soko_test.record_context")
    assert record is not None

    async def enqueue_in_request() -> None:
        request_id_var.set("req-1")
        tenant_id_var.set("tenant-7")
        token = otel_context.attach(trace.set_span_in_context(NonRecordingSpan(parent)))
        try:
            await record.kiq(f"{queue}:with-request")
        finally:
            otel_context.detach(token)

    # A task of its own, so the context variables it sets do not reach the second job.
    await asyncio.create_task(enqueue_in_request())
    await record.kiq(f"{queue}:without-request")
    start_worker("A")

    with_request = json.loads(await poll(lambda: redis.get(f"{queue}:with-request"), 30))
    without_request = json.loads(await poll(lambda: redis.get(f"{queue}:without-request"), 30))

    assert with_request == {
        "request_id": "req-1",
        "tenant_id": "tenant-7",
        "user_id": None,
        "trace_id": format(trace_id, "032x"),
    }
    assert without_request == {"request_id": None, "tenant_id": None, "user_id": None, "trace_id": "0" * 32}


async def test_job_of_a_sigkilled_worker_completes_on_another_without_new_traffic(
    queue: str, redis: Redis, producer: AsyncBroker, start_worker: Callable[[str], subprocess.Popen[bytes]]
) -> None:
    """The stock RedisStreamBroker would leave this job pending forever: it runs XAUTOCLAIM only after
    XREADGROUP returned new messages, and nothing else is enqueued (see the stock case of the next test)."""
    key = f"{queue}:job"
    worker_a = start_worker("A")
    await producer.find_task("soko_test.hang_on").kiq(key, hang_on_worker="A")  # type: ignore[union-attr]
    await poll(lambda: redis.lrange(f"{key}:started", 0, -1), 30)

    kill_group(worker_a)
    killed_at = time.monotonic()
    start_worker("B")
    await poll(lambda: redis.lrange(f"{key}:finished", 0, -1), 30)
    print(f"SIGKILL of A to completion on B: {time.monotonic() - killed_at:.2f} s")

    assert await redis.lrange(f"{key}:started", 0, -1) == [b"A", b"B"]
    assert await redis.lrange(f"{key}:finished", 0, -1) == [b"B"]

    # The worker acknowledges after the task returns, so "finished" is written before the XACK: wait for it.
    async def acknowledged() -> bool:
        return (await redis.xpending(queue, "soko"))["pending"] == 0

    await poll(acknowledged, 30)


def stock_broker(queue: str, idle_timeout_ms: int) -> AsyncBroker:
    return RedisStreamBroker(
        REDIS_URL, queue_name=queue, consumer_group_name="soko", idle_timeout=idle_timeout_ms, xread_block=500
    )


def reclaiming_broker(queue: str, idle_timeout_ms: int) -> AsyncBroker:
    return create_broker(
        Redis.from_url(REDIS_URL), queue_name=queue, idle_timeout_ms=idle_timeout_ms, xread_block_ms=500
    )


@pytest.mark.parametrize(("make_broker", "reclaims"), [(stock_broker, False), (reclaiming_broker, True)])
async def test_quiet_stream_reclaims_a_dead_consumers_job(
    queue: str, redis: Redis, make_broker: Callable[[str, int], AsyncBroker], reclaims: bool
) -> None:
    broker = make_broker(queue, 300)
    await broker.startup()
    await redis.xadd(queue, {b"data": b"job"})
    # A consumer takes the job and dies without acknowledging it.
    await redis.xreadgroup("soko", "dead", {queue: ">"})
    messages = broker.listen()
    try:
        message = await asyncio.wait_for(anext(messages), 3)
    except TimeoutError:
        assert not reclaims
    else:
        assert reclaims
        assert message.data == b"job"
        await message.ack()  # type: ignore[union-attr]
        assert (await redis.xpending(queue, "soko"))["pending"] == 0
    finally:
        await messages.aclose()
        await broker.shutdown()


def test_consumer_span_continues_the_enqueuers_trace_and_ends_once() -> None:
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    middleware = ContextMiddleware(tracer=provider.get_tracer("test"))

    with provider.get_tracer("test").start_as_current_span("enqueue") as enqueue:
        message = middleware.pre_send(TaskiqMessage(task_id="t1", task_name="jobs:send", labels={}, args=[], kwargs={}))

    def execute(fail: bool) -> None:
        middleware.pre_execute(message)
        if fail:
            middleware.on_error(message, None, ValueError("boom"))  # type: ignore[arg-type]
        middleware.post_execute(message, None)  # type: ignore[arg-type]
        assert trace.get_current_span() is trace.INVALID_SPAN

    contextvars.Context().run(execute, False)
    contextvars.Context().run(execute, True)

    _, ok, failed = exporter.get_finished_spans()  # the first is "enqueue"
    for span in (ok, failed):
        assert span.name == "taskiq.execute jobs:send"
        assert span.kind is SpanKind.CONSUMER
        assert span.parent is not None
        assert span.parent.span_id == enqueue.get_span_context().span_id
    assert ok.status.status_code is StatusCode.UNSET
    assert failed.status.status_code is StatusCode.ERROR


async def test_an_enqueue_redis_refuses_is_left_to_the_inbox_sweep(
    make_kernel: KernelFactory, caplog: pytest.LogCaptureFixture
) -> None:
    """taskiq wraps every broker error in SendTaskError; the inbox still takes a refused enqueue for "stored, the
    sweep enqueues it later" instead of failing the webhook (as during a Redis failover)."""
    kernel = make_kernel(env={"SOKO_REDIS_URL": f"redis://127.0.0.1:{free_port()}/0"})  # nothing listens there
    with caplog.at_level(logging.WARNING, logger="soko.inbox"):
        await inbox._enqueue(kernel, [42])
    assert [getattr(record, "inbox_id", None) for record in caplog.records] == [42]
