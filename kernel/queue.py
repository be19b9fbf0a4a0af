"""The job queue: a Redis Streams taskiq broker that redelivers jobs of dead workers, and job context labels.

One broker for a single Redis, a Cluster and Sentinel alike (the client comes from kernel.redis_client).

Importing this module does no I/O; connections open on first use.
"""

import asyncio
import logging
import time
import uuid
from collections.abc import AsyncGenerator, Awaitable, Callable
from contextvars import ContextVar, Token
from typing import Any

from opentelemetry import context as otel_context
from opentelemetry import propagate, trace
from opentelemetry.trace import Span, SpanKind, Status, StatusCode, Tracer
from redis.asyncio import RedisCluster
from redis.exceptions import RedisError, ResponseError
from taskiq import AckableMessage, AsyncBroker, BrokerMessage, TaskiqMessage, TaskiqMiddleware, TaskiqResult

from kernel.context import request_id_var, tenant_id_var, user_id_var
from kernel.metrics import JobTimer
from kernel.redis_client import RedisClient

log = logging.getLogger("soko.queue")

# redis-py 8 gives every connection a 5 s socket_timeout, which also bounds a blocking XREADGROUP.
_SOCKET_TIMEOUT_MS = 5000
# How long a listener waits after a Redis error before reading again (a failover takes seconds).
_LISTEN_RETRY_S = 0.5
# At most one "too few replicas" warning per this many seconds per process.
_UNDER_REPLICATED_LOG_S = 60.0

# Label name -> the context variable it carries from the producer to the job.
_CONTEXT_LABELS: dict[str, ContextVar[str | None]] = {
    "request_id": request_id_var,
    "tenant_id": tenant_id_var,
    "user_id": user_id_var,
}


class StreamBroker(AsyncBroker):
    """A taskiq broker on one Redis stream with a consumer group, on any client kernel.redis_client builds.

    taskiq-redis has a broker per deployment kind (RedisStreamBroker, RedisStreamClusterBroker,
    RedisStreamSentinelBroker), and only the first redelivers the jobs of dead workers: its listen() runs
    XAUTOCLAIM only after XREADGROUP returned new messages, so even there a job held by a SIGKILLed worker waits
    for unrelated new traffic. This one broker serves all three kinds, because every command it sends names the
    stream's one key (XADD, XREADGROUP, XAUTOCLAIM, XACK), so a Cluster routes them all to the stream's slot.
    XAUTOCLAIM runs after every XREADGROUP, i.e. at least every `xread_block` ms. Acknowledgement is XACK after
    execution. All state is in Redis (consumer group, pending entries list); nothing is shared via memory.

    A Redis error while listening (a failover, a restart) is logged and the loop goes on after a short pause:
    the clients reconnect to whichever node now holds the stream, and unacknowledged jobs are still pending
    there, so a worker survives the failover without a restart.
    """

    def __init__(
        self,
        redis: RedisClient,
        *,
        queue_name: str,
        consumer_group: str,
        idle_timeout_ms: int,
        xread_block_ms: int,
        replicas: int = 0,
        replica_wait_ms: int = 500,
        batch: int = 100,
    ) -> None:
        super().__init__()
        self.redis = redis
        self.replicas = replicas
        self.replica_wait_ms = replica_wait_ms
        self._warned_at = -_UNDER_REPLICATED_LOG_S
        self.queue_name = queue_name
        self.consumer_group_name = consumer_group
        self.consumer_name = str(uuid.uuid4())
        self.idle_timeout = idle_timeout_ms
        self.block = xread_block_ms
        self.batch = batch

    async def startup(self) -> None:
        """Create the consumer group (and the stream): it starts at `$`, so jobs enqueued before are not seen."""
        await super().startup()
        try:
            await self.redis.xgroup_create(self.queue_name, self.consumer_group_name, id="$", mkstream=True)
        except ResponseError as error:
            if "BUSYGROUP" not in str(error):
                raise

    async def shutdown(self) -> None:
        await self.redis.aclose()
        await super().shutdown()

    async def kick(self, message: BrokerMessage) -> None:
        """XADD; with `replicas`, then WAIT on the same connection (one pipeline, sent to the stream's node on a
        Cluster) until that many replicas hold the job, so the enqueue returns only once a failover keeps it."""
        if not self.replicas:
            await self.redis.xadd(self.queue_name, {b"data": message.message})
            return
        pipe = self.redis.pipeline(transaction=False)
        pipe.xadd(self.queue_name, {b"data": message.message})
        on_stream_node = (
            {"target_nodes": self.redis.get_node_from_key(self.queue_name)}
            if isinstance(self.redis, RedisCluster)
            else {}
        )
        pipe.execute_command("WAIT", self.replicas, self.replica_wait_ms, **on_stream_node)
        _, acknowledged = await pipe.execute()
        if acknowledged < self.replicas and time.monotonic() - self._warned_at > _UNDER_REPLICATED_LOG_S:
            self._warned_at = time.monotonic()
            log.warning(
                "queue %s: a job reached %d of %d replicas in %d ms; accepted, but a failover now could lose it",
                self.queue_name,
                acknowledged,
                self.replicas,
                self.replica_wait_ms,
            )

    taking_work = True

    def stop_taking_work(self) -> None:
        """From now on yield nothing (the worker's SIGTERM): messages already read and not yet handed to taskiq
        stay unacknowledged in the consumer group, so they are handed back, redelivered after `idle_timeout`."""
        self.taking_work = False

    def _ack(self, message_id: bytes) -> Callable[[], Awaitable[None]]:
        async def ack() -> None:
            await self.redis.xack(self.queue_name, self.consumer_group_name, message_id)

        return ack

    async def listen(self) -> AsyncGenerator[AckableMessage, None]:
        """Yield new messages, then messages idle for longer than `idle_timeout` ms on any consumer."""
        while self.taking_work:
            try:
                fetched = await self.redis.xreadgroup(
                    self.consumer_group_name,
                    self.consumer_name,
                    {self.queue_name: ">"},
                    block=self.block,
                    count=self.batch,
                )
                claimed = await self.redis.xautoclaim(
                    name=self.queue_name,
                    groupname=self.consumer_group_name,
                    consumername=self.consumer_name,
                    min_idle_time=self.idle_timeout,
                    count=self.batch,
                )
            except (RedisError, OSError) as error:
                log.warning("queue %s: Redis unavailable (%s); reading again shortly", self.queue_name, error)
                await asyncio.sleep(_LISTEN_RETRY_S)
                continue
            messages = [message for _, messages in fetched or [] for message in messages]
            messages += claimed[1]  # [next cursor, claimed, deleted ids (Redis 7+)]
            for message_id, fields in messages:
                if not self.taking_work:
                    return
                yield AckableMessage(data=fields[b"data"], ack=self._ack(message_id))


def create_broker(
    redis: RedisClient,
    *,
    queue_name: str,
    consumer_group: str = "soko",
    idle_timeout_ms: int,
    xread_block_ms: int = 2000,
    replicas: int = 0,
    replica_wait_ms: int = 500,
) -> AsyncBroker:
    """Build the job broker on `redis`, with ContextMiddleware installed so every job carries its request context.

    `idle_timeout_ms` must exceed the longest job's run time: a job unacknowledged for that long is taken
    to belong to a dead worker and is redelivered, even if its worker is alive and still running it.
    """
    if not 0 < xread_block_ms < _SOCKET_TIMEOUT_MS:
        raise ValueError(f"xread_block_ms must be in (0, {_SOCKET_TIMEOUT_MS}), got {xread_block_ms}")
    broker = StreamBroker(
        redis,
        queue_name=queue_name,
        consumer_group=consumer_group,
        idle_timeout_ms=idle_timeout_ms,
        xread_block_ms=xread_block_ms,
        replicas=replicas,
        replica_wait_ms=replica_wait_ms,
    )
    return broker.with_middlewares(ContextMiddleware())


# The consumer span of the job running in this context, the token that made it current, and its timer.
_execution_var: ContextVar[tuple[Span, Token[otel_context.Context], JobTimer] | None] = ContextVar(
    "soko_job_execution", default=None
)


class ContextMiddleware(TaskiqMiddleware):
    """Carries request/tenant/user ids and the W3C trace context from the enqueuer to the job.

    Labels are strings only, since taskiq copies them into results and retries.
    """

    def __init__(self, tracer: Tracer | None = None) -> None:
        super().__init__()
        self.tracer = tracer or trace.get_tracer(__name__)

    def pre_send(self, message: TaskiqMessage) -> TaskiqMessage:
        """Copy the set context variables and the current trace context into the labels."""
        for label, var in _CONTEXT_LABELS.items():
            value = var.get()
            if value is not None:
                message.labels[label] = str(value)
        propagate.inject(message.labels)
        return message

    def pre_execute(self, message: TaskiqMessage) -> TaskiqMessage:
        """Set every context variable from the labels (None when absent) and open the consumer span.

        taskiq runs each job in its own asyncio task, so these settings do not leak into other jobs.
        """
        for label, var in _CONTEXT_LABELS.items():
            value = message.labels.get(label)
            var.set(None if value is None else str(value))
        span = self.tracer.start_span(
            f"taskiq.execute {message.task_name}",
            context=propagate.extract(message.labels),
            kind=SpanKind.CONSUMER,
            attributes={"messaging.system": "taskiq", "messaging.message.id": message.task_id},
        )
        token = otel_context.attach(trace.set_span_in_context(span))
        _execution_var.set((span, token, JobTimer(message.task_name)))
        return message

    def on_error(self, message: TaskiqMessage, result: TaskiqResult[Any], exception: BaseException) -> None:
        """Record the failure and end the span here: post_execute is skipped if acknowledging fails."""
        self._end_span(exception)

    def post_execute(self, message: TaskiqMessage, result: TaskiqResult[Any]) -> None:
        """End the span unless on_error already did."""
        self._end_span(None)

    def _end_span(self, exception: BaseException | None) -> None:
        """End the job's span and count its outcome (`soko_jobs_total`, `soko_job_duration_seconds`)."""
        execution = _execution_var.get()
        if execution is None:
            return
        span, token, timer = execution
        _execution_var.set(None)
        timer.finish("success" if exception is None else "failure")
        if exception is not None:
            span.record_exception(exception)
            span.set_status(Status(StatusCode.ERROR, type(exception).__name__))
        span.end()
        otel_context.detach(token)
