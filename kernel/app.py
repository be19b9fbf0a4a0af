"""The web app: a Quart subclass that runs the request pipeline and puts the view in the tenant transaction.

`create_app` only wires things (no I/O); the kernel's `running()` is the app's lifespan.
"""

from __future__ import annotations

import asyncio
import gc
import logging
import os
import re
import time
from contextlib import AsyncExitStack
from dataclasses import is_dataclass
from functools import partial
from typing import Any, cast
from urllib.parse import urlsplit

from pydantic import BaseModel
from quart import Quart, Request, Response, current_app, request
from quart.asgi import ASGIHTTPConnection
from quart.ctx import RequestContext
from quart.globals import request_ctx
from quart.typing import ResponseReturnValue
from quart.wrappers import BaseRequestWebsocket
from quart_schema.conversion import convert_response_return_value
from quart_schema.validation import QuerystringValidationError, RequestSchemaValidationError
from werkzeug.exceptions import BadHost, HTTPException, RequestTimeout
from werkzeug.routing import MapAdapter

from kernel import bodies, commit, db, openapi, tracing
from kernel.context import request_id_var, tenant_id_var, user_id_var
from kernel.credentials_admin import credentials_admin_blueprint
from kernel.health import install_health
from kernel.kernel import Kernel
from kernel.logs import log_access
from kernel.metrics import RequestMetrics
from kernel.openapi import field_errors
from kernel.problems import Problem
from kernel.webhooks import webhooks_blueprint

error_log = logging.getLogger("soko.error")

_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")
_INTERNAL = Problem(500, "internal_error", "The server could not complete the request.")
_DEFAULT_PORTS = {"http": 80, "https": 443}
# Refusals the kernel makes before the pipeline; each request gets its own Problem (a raised one keeps frames).
_INVALID_HOST = (400, "invalid_host", "The Host header is not a valid host name.")
_HOST_MISMATCH = (400, "host_mismatch", "The request target names another host than the Host header.")
_BODY_TIMEOUT = (408, "request_timeout", "The request body did not arrive in time; send it again.")
# While the database is away: retry soon; what the client sees says nothing of why.
RETRY_AFTER_S = 5
OUTAGE_LOG_INTERVAL_S = 10.0
_UNAVAILABLE = Problem(
    503,
    "service_unavailable",
    "The service is briefly unavailable: retry shortly.",
    headers={"Retry-After": str(RETRY_AFTER_S)},
)


class OutageLog:
    """One warning per interval while the database is unreachable, instead of a traceback per request (a 15 s
    outage once logged 1,276 of them): the first failure is logged at once, the rest are counted into the next."""

    def __init__(self, interval: float) -> None:
        self._interval = interval
        self._next = 0.0
        self._unlogged = 0

    def record(self, error: BaseException) -> None:
        now = time.monotonic()
        if now < self._next:
            self._unlogged += 1
            return
        error_log.warning(
            "database unavailable (%s: %s): answering 503 service_unavailable; %d more since the last warning",
            type(error).__name__,
            error,
            self._unlogged,
        )
        self._next, self._unlogged = now + self._interval, 0


class SokoRequest(Request):
    """A body that is not JSON is the client's mistake (415 or 400), never a server error; it is parsed once.

    `max_json_depth` is set by `SokoConnection` when the request is created (see kernel.bodies).
    """

    max_json_depth: int = 32
    refusal: Problem | None = None  # what the request gets instead of being served, decided before routing
    _parsed: Any = Ellipsis

    async def get_json(self, force: bool = False, silent: bool = False, cache: bool = True) -> Any:
        if not (force or self.is_json):
            if silent:
                return None
            raise Problem(415, "unsupported_media_type", "Send the body as application/json.")
        if self._parsed is Ellipsis:
            self._parsed = bodies.parse_json(await self.get_data(), self.max_json_depth)
        return self._parsed


class SokoConnection(ASGIHTTPConnection):
    """Gives a request on a path with a raised body limit (the `body_limits` hook) that limit instead of the app's.

    The limit is fixed when the request is created, before its body arrives, so it is set here rather than in a
    view: Meta's webhooks may carry up to ~3 MB, while everything else keeps `max_body_bytes`.

    An absolute-form target (`GET http://beta.example/x`) whose authority is not the Host header is refused with
    400 `host_mismatch`: RFC 9112 lets the target's authority win, while tenancy scopes by Host, so serving it
    would let a proxy routing by one and soko scoping by the other disagree about the store.
    """

    app: SokoApp

    def _create_request_from_scope(self, send: Any) -> Request:
        created = super()._create_request_from_scope(send)
        created.max_json_depth = self.app.kernel.settings.max_json_depth
        target = self.scope["path"]
        if target[:1] != "/" and _authority(target) != _authority(f"{self.scope['scheme']}://{created.host}"):
            created.refusal = Problem(*_HOST_MISMATCH)
        limit = self.app.body_limits.get(created.path)
        if limit is not None:
            created.body = created.body_class(created.content_length, limit)
            created.max_content_length = limit
        return created


def _authority(url: str) -> tuple[str, int | None]:
    """Host (lower case) and port (the scheme's default when none is written) of an absolute URL."""
    parts = urlsplit(url)
    try:
        port = parts.port
    except ValueError:  # a port that is no number: nothing equals it
        return ("", -1)
    return ((parts.hostname or "").rstrip("."), port or _DEFAULT_PORTS.get(parts.scheme.lower()))


class SokoApp(Quart):
    """Quart with soko's pipeline around every request and the tenant transaction around every view."""

    request_class = SokoRequest
    asgi_http_class = SokoConnection
    kernel: Kernel
    body_limits: dict[str, int]
    outages: OutageLog
    request_metrics: RequestMetrics

    async def full_dispatch_request(self, request_context: RequestContext | None = None) -> Response:
        """Request id, pipeline, access log: the per-request path, kept lean (it runs before every view)."""
        started = time.perf_counter()
        current = (request_context or request_ctx).request
        offered = current.headers.get("x-request-id")
        trusted = offered and self.kernel.settings.trust_request_id and _REQUEST_ID.match(offered)
        request_id = offered if trusted else os.urandom(16).hex()
        tokens = (request_id_var.set(request_id), tenant_id_var.set(None), user_id_var.set(None))
        self.request_metrics.started()
        try:
            try:
                response = await self._serve(current, request_context)
            except Exception as error:  # as `_pipeline` does at each layer's boundary
                response = problem_for(error).to_response()
            response.headers["X-Request-ID"] = request_id
            rule = current.url_rule
            latency_ms = round((time.perf_counter() - started) * 1000, 2)
            log_access(
                current.method,
                rule.rule if rule else None,
                response.status_code,
                latency_ms,
                mask_request_id=bool(trusted),
            )
            self.request_metrics.finished(
                current.method, rule.rule if rule else None, response.status_code, latency_ms / 1000
            )
            return response
        except asyncio.CancelledError:  # the client hung up: no response, but no longer in flight either
            rule = current.url_rule
            self.request_metrics.finished(
                current.method, rule.rule if rule else None, 499, time.perf_counter() - started
            )
            raise
        finally:
            for var, token in zip((request_id_var, tenant_id_var, user_id_var), tokens, strict=True):
                var.reset(token)
            commit.reset()

    async def _serve(self, current: Request, request_context: RequestContext | None) -> Response:
        """The whole body first (kernel.bodies: no layer waits on a slow client), then the pipeline and the view.

        A body complete when the request starts (every GET) is awaited directly, which only raises what it holds
        (413): `get_data` puts its timeout on a task of its own, which every request would pay for nothing."""
        refusal = getattr(current, "refusal", None)
        if refusal is not None:
            raise refusal
        try:
            if current.body._complete.is_set():
                await current.body
            else:
                await current.get_data()
        except RequestTimeout:
            raise Problem(*_BODY_TIMEOUT) from None
        if self.kernel.middleware:
            return await self._pipeline(0, current, request_context)
        return await super().full_dispatch_request(request_context)

    def create_url_adapter(self, request: BaseRequestWebsocket | None) -> MapAdapter | None:
        """Quart's adapter; a Host no IDNA codec takes (`alpha..localhost`) is marked for a 400 instead of a 500
        raised before the request reaches the kernel (werkzeug's BadHost, with no access-log line)."""
        try:
            return super().create_url_adapter(request)
        except BadHost:
            if request is None:
                raise
            request.refusal = Problem(*_INVALID_HOST)  # type: ignore[attr-defined]
            return None

    async def _pipeline(self, index: int, current: Request, request_context: RequestContext | None) -> Response:
        """Run middleware `index` around the rest; past the last one, Quart's own dispatch. Whatever a layer (or
        what it awaits) raises becomes a problem response at that layer's boundary; one coroutine per layer."""
        middleware = self.kernel.middleware
        if index == len(middleware):
            return await super().full_dispatch_request(request_context)
        try:
            return await middleware[index].middleware(
                current, partial(self._pipeline, index + 1, current, request_context)
            )
        except Exception as error:
            return problem_for(error).to_response()

    async def make_response(self, result: Any) -> Response:
        """Convert pydantic models and dataclasses to JSON; dicts and Responses go straight to Quart.

        quart-schema's own wrapper builds a pydantic TypeAdapter for every response, dicts included, which
        costs more per request than the rest of the kernel.
        """
        value = result[0] if isinstance(result, tuple) else result
        if _is_model(value) or (isinstance(value, list) and any(_is_model(item) for item in value)):
            result = convert_response_return_value(result)
        return await super().make_response(result)

    async def dispatch_request(self, request_context: RequestContext | None = None) -> ResponseReturnValue:
        """The view, inside its tenant's transaction when a tenant is bound: an exception or a 5xx rolls back.

        Before a commit, the callbacks registered with `kernel.commit.before_commit` run in the same transaction;
        after it, those registered with `after_commit`.
        """
        if tenant_id_var.get() is None:
            return await super().dispatch_request(request_context)
        async with self.kernel.tenant_transaction() as transaction:
            response = await self.make_response(await super().dispatch_request(request_context))
            if response.status_code >= 500:
                await transaction.rollback()
                return response
            await commit.run_before_commit(response)
        await commit.run_after_commit()
        return response


def problem_for(error: BaseException) -> Problem:
    """The problem a client sees for an exception: its own words for ours, nothing internal for the rest."""
    if isinstance(error, Problem):
        return error
    if db.is_outage(error):
        cast(SokoApp, current_app).outages.record(error)
        return _UNAVAILABLE
    if isinstance(error, RequestSchemaValidationError):
        source = "query" if isinstance(error, QuerystringValidationError) else "body"
        errors = field_errors(error.validation_error, source=source)
        return Problem(400, "validation_error", "The request is not valid: see `errors`.", errors=errors)
    if isinstance(error, HTTPException) and error.code is not None:
        allow = dict(error.get_headers()).get("Allow")
        return Problem.for_status(error.code, error.description, headers={"Allow": allow} if allow else None)
    error_log.error("unhandled error in %s %s", request.method, request.path, exc_info=error)
    return _INTERNAL


def _is_model(value: object) -> bool:
    return isinstance(value, BaseModel) or (is_dataclass(value) and not isinstance(value, type))


def create_app(kernel: Kernel) -> SokoApp:
    """The Quart app of a kernel: its blueprints, error handling and lifespan. Does no I/O."""
    app = SokoApp("soko")
    app.kernel = kernel
    app.outages = OutageLog(OUTAGE_LOG_INTERVAL_S)
    app.request_metrics = RequestMetrics(per_tenant=kernel.settings.metrics.tenant_label)
    app.extensions["soko"] = kernel
    app.config["MAX_CONTENT_LENGTH"] = kernel.settings.max_body_bytes
    app.config["BODY_TIMEOUT"] = kernel.settings.body_timeout
    app.body_limits = {
        path: limit for _, limits in kernel.call("body_limits", kernel=kernel) for path, limit in limits.items()
    }
    app.register_error_handler(Exception, _render_problem)
    openapi.install(app)
    del app.make_response  # quart-schema wraps it per instance; SokoApp.make_response converts only models
    install_health(app)
    app.register_blueprint(webhooks_blueprint())
    if "auth" in kernel.enabled:  # its admin_routes are what make these staff-only: see credentials_admin
        app.register_blueprint(credentials_admin_blueprint())
    for _, blueprints in kernel.call("register_blueprints", kernel=kernel):
        for blueprint in blueprints:
            app.register_blueprint(blueprint)
    lifespan = AsyncExitStack()

    tracing.install(app)

    @app.before_serving
    async def start() -> None:
        await lifespan.enter_async_context(kernel.running(serving=True))
        # Everything startup made (modules, settings, routes, pools) lives as long as the process: out of the
        # collector's sight, a full collection during a request walks only what requests made (the p99's tail).
        gc.freeze()

    @app.after_serving
    async def stop() -> None:
        await lifespan.aclose()

    return app


async def _render_problem(error: Exception) -> Response:
    return problem_for(error).to_response()
