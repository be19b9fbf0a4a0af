"""The metrics' own logic against real Redis and real requests: queue depth, pending and age read from the stream
the broker uses, and request labels that stay bounded whatever the client sends."""

from __future__ import annotations

import time
import uuid

import httpx
from prometheus_client import generate_latest
from redis import Redis

from kernel.app import create_app
from kernel.metrics import instruments
from kernel.metrics_export import QueueCollector
from kernel.testing.services import Servers


def _gauges(collector: QueueCollector) -> dict[str, float]:
    return {family.name: family.samples[0].value for family in collector.collect()}


def test_queue_depth_pending_and_oldest_age_come_from_the_stream(soko_servers: Servers) -> None:
    queue = f"soko-test-metrics-{uuid.uuid4().hex[:8]}"
    collector = QueueCollector(soko_servers.redis_url, queue, "soko")
    assert _gauges(collector) == {"soko_queue_depth": 0, "soko_queue_pending": 0, "soko_queue_oldest_age_seconds": 0}
    redis = Redis.from_url(soko_servers.redis_url)
    try:
        redis.xgroup_create(queue, "soko", id="0", mkstream=True)
        old_ms = int(time.time() * 1000) - 90_000  # a job enqueued 90 s ago, with the stream id taskiq's XADD gives
        redis.xadd(queue, {"data": b"1"}, id=f"{old_ms}-0")
        for _ in range(3):
            redis.xadd(queue, {"data": b"2"})
        redis.xreadgroup("soko", "worker-a", {queue: ">"}, count=1)  # delivered, never acknowledged
        found = _gauges(collector)
        assert (found["soko_queue_depth"], found["soko_queue_pending"]) == (3, 1)
        assert 89 <= found["soko_queue_oldest_age_seconds"] < 120
        redis.xreadgroup("soko", "worker-a", {queue: ">"}, count=10)
        for entry in redis.xpending_range(queue, "soko", min="-", max="+", count=10):
            redis.xack(queue, "soko", entry["message_id"])
        assert _gauges(collector) == {
            "soko_queue_depth": 0,
            "soko_queue_pending": 0,
            "soko_queue_oldest_age_seconds": 0,
        }
    finally:
        redis.delete(queue)
        redis.close()


async def test_request_labels_are_route_templates_and_known_methods_only(make_kernel) -> None:
    app = create_app(make_kernel())
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://shop.example") as client:
        for index in range(5):
            await client.request("BREW", f"/secret/0712345678/{index}")
        await client.get("/healthz")
    text = generate_latest(instruments().registry).decode()
    assert "0712345678" not in text and "/secret" not in text
    assert 'soko_http_requests_total{method="other",route="unmatched",status="4xx"}' in text
    assert 'soko_http_requests_total{method="GET",route="/healthz",status="2xx"}' in text
    assert "BREW" not in text
