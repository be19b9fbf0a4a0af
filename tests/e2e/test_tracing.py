"""One checkout-to-paid flow through real `soko dev` processes gives one trace for the payment: the web process's
SERVER span, its PostgreSQL spans, the worker's job span with the same trace id, and the Daraja call made from
the job. The spans are exported over OTLP/HTTP, as the standard OTEL_* variables say, to a receiver written for
this test: a real HTTP server on loopback decoding the protobuf export."""

from __future__ import annotations

import shutil
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)

from kernel.testing.project import Project, free_port, wait_for

REPO = Path(__file__).resolve().parents[2]
SERVER, CLIENT, CONSUMER = 2, 3, 5  # opentelemetry.proto Span.SpanKind values


@dataclass(frozen=True)
class ReceivedSpan:
    service: str
    name: str
    kind: int
    trace_id: str
    span_id: str
    parent_id: str
    attributes: dict[str, Any]


class OtlpReceiver:
    """`POST /v1/traces` with an ExportTraceServiceRequest body, as an OpenTelemetry collector receives it."""

    def __init__(self) -> None:
        self.spans: list[ReceivedSpan] = []
        self.lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                assert self.path == "/v1/traces"
                assert self.headers["Content-Type"] == "application/x-protobuf"
                receiver.take(ExportTraceServiceRequest.FromString(body))
                reply = ExportTraceServiceResponse().SerializeToString()
                self.send_response(200)
                self.send_header("Content-Type", "application/x-protobuf")
                self.send_header("Content-Length", str(len(reply)))
                self.end_headers()
                self.wfile.write(reply)

            def log_message(self, *args: Any) -> None:
                return None

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"

    def take(self, request: ExportTraceServiceRequest) -> None:
        for resource_spans in request.resource_spans:
            resource = {kv.key: kv.value.string_value for kv in resource_spans.resource.attributes}
            for scope in resource_spans.scope_spans:
                for span in scope.spans:
                    received = ReceivedSpan(
                        service=resource.get("service.name", ""),
                        name=span.name,
                        kind=span.kind,
                        trace_id=span.trace_id.hex(),
                        span_id=span.span_id.hex(),
                        parent_id=span.parent_span_id.hex(),
                        attributes={kv.key: _value(kv.value) for kv in span.attributes},
                    )
                    with self.lock:
                        self.spans.append(received)

    def trace(self, trace_id: str) -> list[ReceivedSpan]:
        with self.lock:
            return [span for span in self.spans if span.trace_id == trace_id]


def _value(value: Any) -> Any:
    return getattr(value, value.WhichOneof("value")) if value.WhichOneof("value") else None


@pytest.fixture
def receiver() -> Iterator[OtlpReceiver]:
    found = OtlpReceiver()
    thread = threading.Thread(target=found.server.serve_forever, daemon=True)
    thread.start()
    try:
        yield found
    finally:
        found.server.shutdown()
        found.server.server_close()


def test_checkout_to_paid_is_one_trace_from_the_request_through_the_job_to_daraja(
    soko_project: Project, receiver: OtlpReceiver
) -> None:
    shutil.copy(REPO / "settings.toml", soko_project.root)
    shutil.copytree(REPO / "config", soko_project.root / "config", dirs_exist_ok=True)
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    dev = soko_project.start(
        "dev",
        name="dev",
        SOKO_ENV="development",
        SOKO_BIND=f"127.0.0.1:{port}",
        OTEL_EXPORTER_OTLP_ENDPOINT=receiver.url,
        OTEL_TRACES_SAMPLER="always_on",
        OTEL_BSP_SCHEDULE_DELAY="200",
    )
    try:
        wait_for(lambda: _ready(f"{base}/readyz"), timeout=90, what=f"soko dev to serve\n{dev.log()}")
        with httpx.Client(base_url=base, headers={"Host": "demo.localhost"}, timeout=30) as shop:
            cart = shop.post("/carts", json={}).json()["id"]
            added = shop.post(f"/carts/{cart}/items", json={"sku": "chai-250g", "quantity": 1})
            assert added.status_code in (200, 201), added.text
            placed = shop.post(
                "/checkout",
                headers={"Idempotency-Key": f"checkout-{cart}"},
                json={"cart_id": cart, "customer_phone": "0712345678"},
            ).json()
            order, order_token = placed["id"], placed["access_token"]
            paying = shop.post(
                "/payments/intents",
                headers={"Idempotency-Key": f"pay-{order}", "traceparent": f"00-{'ab' * 16}-{'cd' * 8}-01"},
                json={"order_id": order, "provider": "mpesa", "phone": "0712345678"},
            )
            assert paying.status_code in (200, 201, 202), paying.text
            wait_for(
                lambda: shop.get(f"/orders/{order}", headers={"X-Order-Token": order_token}).json()["status"] == "paid",
                timeout=30,
                interval=0.2,
                what="the simulator to pay the order",
            )
        trace_id = "ab" * 16  # the caller's trace, continued by the server

        def complete() -> list[ReceivedSpan] | None:
            spans = receiver.trace(trace_id)
            names = {span.name for span in spans}
            done = "taskiq.execute payments.push" in names and any(
                span.kind == CLIENT and span.name == "POST" for span in spans
            )
            return spans if done else None

        spans = wait_for(complete, timeout=30, interval=0.2, what="the payment's spans to be exported")
    finally:
        dev.stop()

    server = [span for span in spans if span.kind == SERVER]
    assert [span.name for span in server] == ["POST /payments/intents"]
    assert server[0].service == "soko-web"
    assert server[0].parent_id == "cd" * 8
    assert server[0].attributes["http.route"] == "/payments/intents"
    assert server[0].attributes["http.response.status_code"] in (200, 201, 202)
    assert len(server[0].attributes["soko.request_id"]) == 32
    assert server[0].attributes["soko.tenant_id"]
    by_id = {span.span_id: span for span in spans}
    queries = [span for span in spans if span.name.startswith("postgresql ") and span.service == "soko-web"]
    assert queries, "the request's statements have spans"
    assert all(_ancestor(span, server[0], by_id) for span in queries)
    assert all(span.attributes["db.system.name"] == "postgresql" for span in queries)
    enqueued = [span for span in spans if span.name == "redis XADD" and span.service == "soko-web"]
    assert enqueued and all(_ancestor(span, server[0], by_id) for span in enqueued), "the job was enqueued inside it"
    assert not any("0712345678" in str(span.attributes) or "254712345678" in str(span.attributes) for span in spans)
    job = next(span for span in spans if span.name == "taskiq.execute payments.push")
    assert (job.kind, job.service) == (CONSUMER, "soko-worker")
    assert _ancestor(job, server[0], by_id)
    daraja = [span for span in spans if span.kind == CLIENT and span.name == "POST" and span.service == "soko-worker"]
    assert daraja and all(_ancestor(span, job, by_id) for span in daraja)
    assert any(span.name.startswith("postgresql ") and _ancestor(span, job, by_id) for span in spans)


def _ancestor(span: ReceivedSpan, ancestor: ReceivedSpan, by_id: dict[str, ReceivedSpan]) -> bool:
    current: ReceivedSpan | None = span
    while current is not None and current.parent_id:
        if current.parent_id == ancestor.span_id:
            return True
        current = by_id.get(current.parent_id)
    return False


def _ready(url: str) -> bool:
    try:
        return httpx.get(url, timeout=1).status_code == 200
    except httpx.TransportError:
        return False
