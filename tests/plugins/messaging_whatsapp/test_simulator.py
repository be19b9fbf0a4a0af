"""The Graph API simulator as the plugin and the tests meet it: real HTTP on loopback, in this test's event loop."""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import AsyncIterator

import httpx
import pytest
from aiohttp import web

from kernel.testing.project import eventually
from plugins.messaging_whatsapp import graph, simulator

APP_SECRET = "simulator-app-secret"


@pytest.fixture
async def receiver() -> AsyncIterator[tuple[str, list[tuple[bytes, str]]]]:
    """A webhook endpoint collecting what the simulator POSTs: raw body and signature."""
    received: list[tuple[bytes, str]] = []

    async def collect(request: web.Request) -> web.Response:
        received.append((await request.read(), request.headers.get("X-Hub-Signature-256", "")))
        return web.json_response({"status": "accepted"})

    app = web.Application()
    app.router.add_post("/webhooks/whatsapp", collect)
    runner = web.AppRunner(app)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    host, port = runner.addresses[0][:2]
    try:
        yield f"http://{host}:{port}/webhooks/whatsapp", received
    finally:
        await runner.cleanup()


@pytest.fixture
async def graph_api(receiver: tuple[str, list[tuple[bytes, str]]]) -> AsyncIterator[httpx.AsyncClient]:
    async with (
        simulator.serve(app_secret=APP_SECRET, webhook_url=receiver[0]) as base_url,
        httpx.AsyncClient(base_url=base_url) as client,
    ):
        yield client


def send(client: httpx.AsyncClient, to: str, content: graph.Content) -> object:
    return client.post(
        "/v21.0/1111/messages", json=graph.payload(to, content, "ref-1"), headers={"Authorization": "Bearer token-1234"}
    )


async def test_sends_of_every_kind_are_accepted_and_counted(graph_api: httpx.AsyncClient) -> None:
    contents = [
        graph.text_content("Habari"),
        graph.template_content("order_ready", "sw", graph.template_components(["A-17"])),
        graph.buttons_content("Confirm?", [("yes", "Yes"), ("no", "No")]),
        graph.list_content("Pick one", "Menu", [{"title": "Drinks", "rows": [{"id": "chai", "title": "Chai"}]}]),
    ]
    ids = []
    for content in contents:
        response = await send(graph_api, "+254712345678", content)
        assert response.status_code == 200, response.text
        ids.append(response.json()["messages"][0]["id"])
    assert all(item.startswith("wamid.") for item in ids) and len(set(ids)) == 4
    accepted = (await graph_api.get("/_sim/messages")).json()
    assert accepted["count"] == 4
    assert [message["type"] for message in accepted["messages"]] == ["text", "template", "interactive", "interactive"]


async def test_malformed_sends_get_graph_error_100(graph_api: httpx.AsyncClient) -> None:
    four_buttons = graph.buttons_content("Too many", [(str(n), str(n)) for n in range(4)])
    for content in (four_buttons, {"type": "text", "text": {"body": ""}}):
        response = await send(graph_api, "+254712345678", content)
        assert response.status_code == 400
        assert response.json()["error"]["code"] == 100
    assert (await graph_api.get("/_sim/messages")).json()["count"] == 0


async def test_failures_programmed_per_recipient_then_success(graph_api: httpx.AsyncClient) -> None:
    await graph_api.post("/_sim/failures", json={"to": "+254700000001", "codes": [131056, 500]})
    first = await send(graph_api, "+254700000001", graph.text_content("a"))
    other = await send(graph_api, "+254700000002", graph.text_content("b"))
    second = await send(graph_api, "+254700000001", graph.text_content("a"))
    third = await send(graph_api, "+254700000001", graph.text_content("a"))
    assert (first.status_code, first.json()["error"]["code"]) == (429, 131056)
    assert first.json()["error"]["error_data"]["details"]
    assert other.status_code == 200
    assert second.status_code == 500
    assert third.status_code == 200
    assert (await graph_api.get("/_sim/messages", params={"to": "+254700000001"})).json()["count"] == 1


@pytest.mark.parametrize(
    ("code", "expected"),
    [
        (130429, "rate_limited"),
        (131056, "rate_limited"),
        (80007, "rate_limited"),
        (4, "rate_limited"),
        (500, "unavailable"),
        (131026, "invalid_recipient"),
        (131047, "session_window_closed"),
        (131050, "opted_out"),
        (132000, "template_rejected"),
        (132001, "template_rejected"),
        (190, "misconfigured"),
    ],
)
async def test_every_graph_error_is_classified(graph_api: httpx.AsyncClient, code: int, expected: str) -> None:
    await graph_api.post("/_sim/failures", json={"codes": [code]})
    response = await send(graph_api, "+254700000003", graph.text_content("x"))
    error = graph.send_error(response, pair_interval=6.0)
    assert str(error.code) == expected
    assert error.retryable is (expected in ("rate_limited", "unavailable"))
    if code == 131056:
        assert error.retry_after == 6.0


async def test_status_webhooks_are_signed_over_exact_bytes_with_escaped_non_ascii(
    graph_api: httpx.AsyncClient, receiver: tuple[str, list[tuple[bytes, str]]]
) -> None:
    _, received = receiver
    response = await send(graph_api, "+254712345678", graph.text_content("Karibu ☕"))
    wamid = response.json()["messages"][0]["id"]
    await eventually(lambda: len(received) >= 3, timeout=10, what="three status webhooks")
    statuses = []
    for body, signature in received:
        assert signature == "sha256=" + hmac.new(APP_SECRET.encode(), body, hashlib.sha256).hexdigest()
        status = json.loads(body)["entry"][0]["changes"][0]["value"]["statuses"][0]
        assert status["id"] == wamid and status["biz_opaque_callback_data"] == "ref-1"
        statuses.append(status["status"])
    assert statuses == ["sent", "delivered", "read"]
    inbound = await graph_api.post(
        "/_sim/inbound", json={"phone_number_id": "1111", "from": "+254712345678", "text": "Asante ☕"}
    )
    assert inbound.json()["answer"] == 200
    body = received[-1][0]
    assert b"\\u2615" in body and "☕".encode() not in body  # escaped, as Meta sends it


async def test_statuses_on_demand_in_any_order(
    graph_api: httpx.AsyncClient, receiver: tuple[str, list[tuple[bytes, str]]]
) -> None:
    _, received = receiver
    await graph_api.post("/_sim/settings", json={"auto_statuses": []})
    wamid = (await send(graph_api, "+254712345678", graph.text_content("x"))).json()["messages"][0]["id"]
    answer = await graph_api.post("/_sim/statuses", json={"id": wamid, "sequence": ["read", "delivered", "read"]})
    assert answer.json()["answers"] == [200, 200, 200]
    sent = [json.loads(body)["entry"][0]["changes"][0]["value"]["statuses"][0]["status"] for body, _ in received]
    assert sent == ["read", "delivered", "read"]
