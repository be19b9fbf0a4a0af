"""The job queue: a Redis Streams taskiq broker that redelivers jobs of dead workers, and job context labels.

Importing this module does no I/O; connections open on first use.
"""

from collections.abc import AsyncGenerator
from contextvars import ContextVar, Token
from typing import Any

from opentelemetry import context as otel_context
from opentelemetry import propagate, trace
from opentelemetry.trace import Span, SpanKind, Status, StatusCode, Tracer
from redis.asyncio import Redis
from taskiq import AckableMessage, AsyncBroker, TaskiqMessage, TaskiqMiddleware, TaskiqResult
from taskiq_redis import RedisStreamBroker

from kernel.context import request_id_var, tenant_id_var, user_id_var
from kernel.metrics import JobTimer

# redis-py 8 gives every connection a 5 s socket_timeout, which also bounds a blocking XREADGROUP.
_SOCKET_TIMEOUT_MS = 5000

# Label name -> the context variable it carries from the producer to the job.
_CONTEXT_LABELS: dict[str, ContextVar[str | None]] = {
    "request_id": request_id_var,
    "tenant_id": tenant_id_var,
    "user_id": user_id_var,
}


class ReclaimingStreamBroker(RedisStreamBroker):
    """RedisStreamBroker that also redelivers the jobs of dead workers while the stream is quiet.

    The parent's listen() runs XAUTOCLAIM only after XREADGROUP returned new messages (`if not fetched:
    continue`), so a job held by a SIGKILLed worker waits for unrelated new traffic. This listen() is the
    parent's loop with that skip removed: XAUTOCLAIM runs after every XREADGROUP, i.e. at least every
    `xread_block` ms. Acknowledgement is unchanged: XACK runs when taskiq calls the message's ack after
    execution. All state is in Redis (consumer group, pending entries list); nothing is shared via memory.
    """

    async def listen(self) -> AsyncGenerator[AckableMessage, None]:
        """Yield new messages, then messages idle for longer than `idle_timeout` ms on any consumer."""
        streams = [self.queue_name, *self.additional_streams.keys()]
        async with Redis(connection_pool=self.connection_pool) as redis_conn:
            while True:
                fetched = await redis_conn.xreadgroup(
                    self.consumer_group_name,
                    self.consumer_name,
                    {self.queue_name: ">", **self.additional_streams},  # type: ignore[dict-item]
                    block=self.block,
                    noack=False,
                    count=self.count,
                )
                for stream, msg_list in fetched or []:
                    for msg_id, msg in msg_list:
                        yield AckableMessage(data=msg[b"data"], ack=self._ack_generator(msg_id, stream))
                for stream in streams:
                    # The parent wraps this in a redis Lock created on a MULTI pipeline; its SET NX and
                    # release are queued in the same transaction, so they never exclude anyone and plain
                    # XAUTOCLAIM (atomic by itself) is equivalent.
                    autoclaimed = await redis_conn.xautoclaim(
                        name=stream,
                        groupname=self.consumer_group_name,
                        consumername=self.consumer_name,
                        min_idle_time=self.idle_timeout,
                        count=self.unacknowledged_batch_size,
                    )
                    for msg_id, msg in autoclaimed[1]:  # [next cursor, claimed, deleted ids (Redis 7+)]
                        yield AckableMessage(data=msg[b"data"], ack=self._ack_generator(msg_id, stream))


def create_broker(
    redis_url: str,
    *,
    queue_name: str,
    consumer_group: str = "soko",
    idle_timeout_ms: int,
    xread_block_ms: int = 2000,
) -> AsyncBroker:
    """Build the job broker, with ContextMiddleware installed so every job carries its request context.

    `idle_timeout_ms` must exceed the longest job's run time: a job unacknowledged for that long is taken
    to belong to a dead worker and is redelivered, even if its worker is alive and still running it.
    """
    if not 0 < xread_block_ms < _SOCKET_TIMEOUT_MS:
        raise ValueError(f"xread_block_ms must be in (0, {_SOCKET_TIMEOUT_MS}), got {xread_block_ms}")
    broker = ReclaimingStreamBroker(
        redis_url,
        queue_name=queue_name,
        consumer_group_name=consumer_group,
        idle_timeout=idle_timeout_ms,
        xread_block=xread_block_ms,
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
