"""OpenTelemetry tracing: off unless the standard `OTEL_*` variables ask for an exporter.

`configure()` runs once per process (web and worker); it installs the SDK's TracerProvider with an OTLP/HTTP
exporter when `OTEL_TRACES_EXPORTER` is `otlp` or an `OTEL_EXPORTER_OTLP_[TRACES_]ENDPOINT` is set, and
`OTEL_SDK_DISABLED=true` wins over both. Everything else is the SDK's own reading of the variables: the sampler
(`OTEL_TRACES_SAMPLER`, `_ARG`), the service name and resource (`OTEL_SERVICE_NAME`, `OTEL_RESOURCE_ATTRIBUTES`),
the endpoint, headers and batching (`OTEL_EXPORTER_OTLP_*`, `OTEL_BSP_*`).

Spans: one SERVER span per request (ASGI middleware, named `METHOD /route/<template>`, with the request id and
tenant id), a CLIENT span per PostgreSQL statement (from asyncpg's query logger: the statement, never its
arguments) and per Redis command or pipeline (the command name, never its keys or values), the job's CONSUMER
span (kernel/queue.py, which carries the context in the job's labels) and a CLIENT span per outbound call
of the providers' httpx clients (`traced_transport`), which sends `traceparent`.
With tracing off, none of these is installed: the request path pays nothing.
"""

from __future__ import annotations

import os
import re
import time
from collections.abc import Awaitable, Callable, MutableMapping
from typing import TYPE_CHECKING, Any

import httpx
from opentelemetry import propagate, trace
from opentelemetry.trace import SpanKind, Status, StatusCode

from kernel.context import request_id_var, tenant_id_var

if TYPE_CHECKING:
    from asyncpg.connection import LoggedQuery
    from quart import Quart

_tracer = trace.get_tracer("soko")
_configured: list[bool] = []  # whether this process exports spans (decided once, by configure())

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
ASGIApp = Callable[[Scope, Callable[[], Awaitable[Message]], Callable[[Message], Awaitable[None]]], Awaitable[None]]


def wanted(environ: MutableMapping[str, str] | None = None) -> bool:
    """Whether the `OTEL_*` variables ask for spans to be exported."""
    env = os.environ if environ is None else environ
    if env.get("OTEL_SDK_DISABLED", "").strip().lower() == "true":
        return False
    exporter = env.get("OTEL_TRACES_EXPORTER", "").strip().lower()
    if exporter:
        return exporter != "none"
    return bool(env.get("OTEL_EXPORTER_OTLP_ENDPOINT") or env.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"))


def configure(service: str) -> bool:
    """Install the exporting TracerProvider in this process if the variables ask for it; say whether they did."""
    if _configured:
        return _configured[0]
    on = wanted()
    _configured.append(on)
    if on:
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
        from opentelemetry.sdk.resources import OTEL_SERVICE_NAME, Resource
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.export import BatchSpanProcessor

        resource = Resource.create({} if os.environ.get(OTEL_SERVICE_NAME) else {"service.name": f"soko-{service}"})
        provider = TracerProvider(resource=resource)  # the sampler comes from OTEL_TRACES_SAMPLER
        provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
        trace.set_tracer_provider(provider)
        _trace_redis()
    return on


def enabled() -> bool:
    return bool(_configured and _configured[0])


class ServerSpans:
    """ASGI middleware: a SERVER span around each HTTP request, continuing an incoming `traceparent`."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Callable[[], Awaitable[Message]], send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        carrier = {key.decode("latin-1"): value.decode("latin-1") for key, value in scope["headers"]}
        method = scope["method"]
        with _tracer.start_as_current_span(
            method,
            context=propagate.extract(carrier),
            kind=SpanKind.SERVER,
            attributes={"http.request.method": method},
        ) as span:

            async def traced_send(message: Message) -> None:
                if message["type"] == "http.response.start":
                    span.set_attribute("http.response.status_code", message["status"])
                    if message["status"] >= 500:
                        span.set_status(Status(StatusCode.ERROR))
                await send(message)

            await self.app(scope, receive, traced_send)


async def _name_server_span() -> None:
    """Before the view (the pipeline has resolved the tenant by now): route template, request and tenant ids."""
    from quart import request

    span = trace.get_current_span()
    rule = request.url_rule
    if rule is not None:
        span.update_name(f"{request.method} {rule.rule}")
        span.set_attribute("http.route", rule.rule)
    for name, var in (("soko.request_id", request_id_var), ("soko.tenant_id", tenant_id_var)):
        if (value := var.get()) is not None:
            span.set_attribute(name, value)


def install(app: Quart) -> None:
    """Trace `app`'s requests, if this process exports spans."""
    if enabled():
        app.asgi_app = ServerSpans(app.asgi_app)  # type: ignore[method-assign]
        app.before_request(_name_server_span)


_FIRST_WORD = re.compile(r"[\s;]")  # what names a statement's span: BEGIN of "BEGIN;SELECT set_config(...)"


def query_span(record: LoggedQuery) -> None:
    """asyncpg's query logger: a span for a statement that just ran, inside the request's or job's span."""
    if not trace.get_current_span().is_recording():  # no request or job around it (the pool's own checks)
        return
    end = time.time_ns()
    query = record.query.strip()
    span = _tracer.start_span(
        f"postgresql {_FIRST_WORD.split(query, maxsplit=1)[0].upper() if query else 'query'}",
        kind=SpanKind.CLIENT,
        start_time=end - int(record.elapsed * 1e9),
        attributes={"db.system.name": "postgresql", "db.query.text": query[:2048]},
    )
    if record.exception is not None:
        span.set_status(Status(StatusCode.ERROR, type(record.exception).__name__))
    span.end(end_time=end)


def pool_options(config: dict[str, Any]) -> dict[str, Any]:
    """Extra options for an asyncpg pool built from `config`: when tracing, an `init` that also makes every new
    connection report its statements to `query_span` (after the `init` the config may have); else none."""
    if not enabled():
        return {}
    configured = config.get("init")

    async def init(connection: Any) -> None:
        if configured is not None:
            await configured(connection)
        connection.add_query_logger(query_span)

    return {"init": init}


def _trace_redis() -> None:
    """A CLIENT span per Redis command and per pipeline, for every asyncio client in this process.

    Redis clients are built in many places (queue, rate limits, tokens, pacing), so this wraps redis-py's
    `execute_command` and `Pipeline.execute` once, as OpenTelemetry's contrib instrumentation does; only inside a
    recording span, so the worker's blocking reads between jobs make none.
    """
    from redis.asyncio.client import Pipeline, Redis

    command = Redis.execute_command
    pipeline = Pipeline.execute

    async def execute_command(self: Redis, *args: Any, **options: Any) -> Any:
        if not trace.get_current_span().is_recording():
            return await command(self, *args, **options)
        name = str(args[0]).upper() if args else "command"
        with _tracer.start_as_current_span(f"redis {name}", kind=SpanKind.CLIENT, attributes=_REDIS):
            return await command(self, *args, **options)

    async def execute(self: Pipeline, raise_on_error: bool = True) -> Any:
        if not trace.get_current_span().is_recording():
            return await pipeline(self, raise_on_error)
        attributes = _REDIS | {"db.operation.batch.size": len(self.command_stack)}
        with _tracer.start_as_current_span("redis pipeline", kind=SpanKind.CLIENT, attributes=attributes):
            return await pipeline(self, raise_on_error)

    Redis.execute_command = execute_command  # type: ignore[method-assign]
    Pipeline.execute = execute  # type: ignore[method-assign]


_REDIS = {"db.system.name": "redis"}


class TracedTransport(httpx.AsyncBaseTransport):
    """An httpx transport that wraps each call in a CLIENT span and sends its `traceparent`."""

    def __init__(self, inner: httpx.AsyncBaseTransport) -> None:
        self._inner = inner

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        attributes = {"http.request.method": request.method, "server.address": request.url.host}
        with _tracer.start_as_current_span(f"{request.method}", kind=SpanKind.CLIENT, attributes=attributes) as span:
            propagate.inject(request.headers)
            response = await self._inner.handle_async_request(request)
            span.set_attribute("http.response.status_code", response.status_code)
            if response.status_code >= 500:
                span.set_status(Status(StatusCode.ERROR))
            return response

    async def aclose(self) -> None:
        await self._inner.aclose()


def traced_transport(**options: Any) -> httpx.AsyncBaseTransport:
    """The transport for a provider's shared httpx client (`options` as httpx.AsyncHTTPTransport takes them):
    traced when this process exports spans, else the plain one."""
    inner = httpx.AsyncHTTPTransport(**options)
    return TracedTransport(inner) if enabled() else inner
