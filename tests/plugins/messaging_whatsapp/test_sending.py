"""`POST /messages/whatsapp` through real `soko serve` and `soko worker` processes to the Graph API simulator."""

from __future__ import annotations

import asyncio
import time
import uuid
from typing import Any

import asyncpg
import httpx
import pytest

from kernel.testing.project import Running, eventually
from tests.plugins.messaging_whatsapp.conftest import (
    Shop,
    Simulator,
    assert_logs_keep_secrets,
    message_row,
    new_customer,
    open_window,
)

pytestmark = pytest.mark.usefixtures("worker")

# How long a client keeps retrying a key the server says is still in progress before it gives up.
IN_PROGRESS_PATIENCE_S = 60


async def post_message(
    http: httpx.AsyncClient, shop: Shop, body: dict[str, Any], key: str, *, follow_in_progress: bool = True
) -> httpx.Response:
    """What a careful client does: send, and while the key is still in progress, retry after Retry-After."""
    deadline = time.monotonic() + IN_PROGRESS_PATIENCE_S
    while True:
        response = await http.post("/messages/whatsapp", headers=shop.headers | {"Idempotency-Key": key}, json=body)
        if not (follow_in_progress and response.status_code == 409 and "in_progress" in response.text):
            return response
        if time.monotonic() > deadline:
            raise AssertionError(f"key {key} still in progress after {IN_PROGRESS_PATIENCE_S}s")
        await asyncio.sleep(float(response.headers.get("Retry-After", "1")))


async def settled(superuser: asyncpg.Connection, message_id: str) -> asyncpg.Record:
    """The message once its send has an outcome (taken by Meta, or failed)."""

    async def row() -> asyncpg.Record | None:
        found = await message_row(superuser, message_id)
        return found if found["status"] not in ("queued", "sending") else None

    return await eventually(row, timeout=30, what=f"message {message_id} to be sent or fail")


async def test_one_key_sent_five_times_at_once_is_one_message_with_five_identical_answers(
    server: Running, simulator: Simulator, shop: Shop, superuser: asyncpg.Connection
) -> None:
    customer = new_customer()
    await open_window(superuser, shop, customer)
    key = str(uuid.uuid4())
    body = {"to": customer, "text": "Your order is on its way"}
    async with httpx.AsyncClient(base_url=server.base_url, timeout=30) as http:
        answers = await asyncio.gather(
            *(post_message(http, shop, body, key, follow_in_progress=False) for _ in range(5))
        )
    # No retrying client needed: the repeats wait for the first send's answer (idempotency's wait_seconds).
    assert {answer.status_code for answer in answers} == {202}, [answer.text for answer in answers]
    assert len({answer.text for answer in answers}) == 1
    assert sum(answer.headers.get("Idempotent-Replayed") == "true" for answer in answers) == 4
    message = answers[0].json()
    assert message["status"] == "queued"
    row = await settled(superuser, message["id"])
    assert row["status"] != "failed", row
    assert len(simulator.accepted(customer)) == 1
    assert simulator.accepted(customer)[0]["id"] == row["provider_message_id"]


@pytest.mark.parametrize("codes", [[130429], [131056, 131056], [500, 80007, 4]])
async def test_retryable_refusals_are_retried_until_delivered(
    server: Running, simulator: Simulator, shop: Shop, superuser: asyncpg.Connection, codes: list[int]
) -> None:
    customer = new_customer()
    await open_window(superuser, shop, customer)
    simulator.control("POST", "failures", json={"to": customer, "codes": codes})
    async with httpx.AsyncClient(base_url=server.base_url, timeout=30) as http:
        answer = await post_message(http, shop, {"to": customer, "text": "Receipt"}, str(uuid.uuid4()))
    assert answer.status_code == 202, answer.text
    row = await settled(superuser, answer.json()["id"])
    assert row["status"] in ("accepted", "sent", "delivered", "read"), row
    assert row["attempts"] == len(codes) + 1
    assert len(simulator.accepted(customer)) == 1


@pytest.mark.parametrize(
    ("code", "recorded"),
    [
        (131026, "invalid_recipient"),
        (131047, "session_window_closed"),
        (131050, "opted_out"),
        (132001, "template_rejected"),
    ],
)
async def test_terminal_refusals_are_recorded_and_not_retried(
    server: Running, simulator: Simulator, shop: Shop, superuser: asyncpg.Connection, code: int, recorded: str
) -> None:
    customer = new_customer()
    await open_window(superuser, shop, customer)
    simulator.control("POST", "failures", json={"to": customer, "codes": [code]})
    async with httpx.AsyncClient(base_url=server.base_url, timeout=30) as http:
        answer = await post_message(http, shop, {"to": customer, "text": "Hello"}, str(uuid.uuid4()))
        row = await settled(superuser, answer.json()["id"])
        shown = (await http.get(f"/messages/whatsapp/{row['id']}", headers=shop.headers)).json()
    assert (row["status"], row["error_code"], row["provider_error_code"], row["attempts"]) == (
        "failed",
        recorded,
        str(code),
        1,
    )
    assert (shown["status"], shown["error_code"]) == ("failed", recorded)
    assert simulator.accepted(customer) == []


async def test_free_text_outside_the_window_is_refused_before_meta_but_a_template_goes(
    server: Running, simulator: Simulator, shop: Shop, superuser: asyncpg.Connection
) -> None:
    customer = new_customer()  # never wrote to the shop
    template = {
        "name": "order_shipped",
        "language": "en",
        "components": [{"type": "body", "parameters": [{"type": "text", "text": "A-17"}]}],
    }
    async with httpx.AsyncClient(base_url=server.base_url, timeout=30) as http:
        refused = await post_message(http, shop, {"to": customer, "text": "Hi"}, str(uuid.uuid4()))
        sent = await post_message(http, shop, {"to": customer, "template": template}, str(uuid.uuid4()))
    assert refused.status_code == 422
    assert refused.headers["content-type"] == "application/problem+json"
    assert refused.json()["code"] == "outside_service_window"
    assert sent.status_code == 202, sent.text
    await settled(superuser, sent.json()["id"])
    [accepted] = simulator.accepted(customer)
    assert accepted["type"] == "template" and accepted["payload"]["template"]["name"] == "order_shipped"


async def test_interactive_buttons_and_lists_are_sent(
    server: Running, simulator: Simulator, shop: Shop, superuser: asyncpg.Connection
) -> None:
    customer = new_customer()
    await open_window(superuser, shop, customer)
    buttons = {"body": "Confirm delivery?", "buttons": [{"id": "yes", "title": "Yes"}, {"id": "no", "title": "No"}]}
    menu = {
        "body": "Pick",
        "button": "Menu",
        "sections": [{"title": "Drinks", "rows": [{"id": "chai", "title": "Chai"}]}],
    }
    async with httpx.AsyncClient(base_url=server.base_url, timeout=30) as http:
        for interactive in (buttons, menu):
            answer = await post_message(http, shop, {"to": customer, "interactive": interactive}, str(uuid.uuid4()))
            assert answer.status_code == 202, answer.text
            await settled(superuser, answer.json()["id"])
        too_many = await post_message(
            http,
            shop,
            {"to": customer, "interactive": buttons | {"buttons": buttons["buttons"] * 2}},
            str(uuid.uuid4()),
        )
    assert too_many.status_code == 400
    assert [item["payload"]["interactive"]["type"] for item in simulator.accepted(customer)] == ["button", "list"]


async def test_only_staff_may_send(server: Running, shop: Shop) -> None:
    async with httpx.AsyncClient(base_url=server.base_url, timeout=30) as http:
        anonymous = await http.post(
            "/messages/whatsapp",
            headers={"Host": shop.headers["Host"], "Idempotency-Key": str(uuid.uuid4())},
            json={"to": new_customer(), "text": "x"},
        )
    assert anonymous.status_code == 401


def test_no_log_line_holds_a_number_token_or_message_text(server: Running, worker: Running) -> None:
    """Runs last in the module, after sends of every kind and refusals of every class."""
    assert_logs_keep_secrets([server, worker], "Your order is on its way", "Receipt", "Confirm delivery")
