"""Meta's one webhook URL for every shop, through real processes: signatures, routing by phone number id through
the kernel's inbox, and statuses that only move forward."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import uuid

import asyncpg
import httpx
import pytest
from openapi_spec_validator import validate

from kernel.testing.project import Project, Running, eventually
from plugins.messaging_whatsapp import simulator as graph_simulator
from tests.plugins.messaging_whatsapp.conftest import (
    APP_SECRET,
    VERIFY_TOKEN,
    Shop,
    Simulator,
    assert_logs_keep_secrets,
    message_row,
    new_customer,
    open_shop,
    open_window,
)
from tests.plugins.messaging_whatsapp.test_sending import post_message, settled

pytestmark = pytest.mark.usefixtures("worker")


def signature(body: bytes, secret: str = APP_SECRET) -> str:
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def inbound_body(phone_number_id: str, sender: str, text: str) -> bytes:
    _, value = graph_simulator.inbound_value(sender.lstrip("+"), text)
    return graph_simulator.signed_body(graph_simulator.webhook_document(phone_number_id, value), APP_SECRET.encode())[0]


async def contacts_of(superuser: asyncpg.Connection, shop: Shop) -> set[str]:
    rows = await superuser.fetch("SELECT customer FROM whatsapp_contacts WHERE tenant_id = $1::uuid", shop.id)
    return {row["customer"] for row in rows}


def test_subscription_check_echoes_the_challenge_as_text(server: Running) -> None:
    query = {"hub.mode": "subscribe", "hub.verify_token": VERIFY_TOKEN, "hub.challenge": "1503975839"}
    accepted = httpx.get(f"{server.base_url}/webhooks/whatsapp", params=query)
    refused = httpx.get(f"{server.base_url}/webhooks/whatsapp", params=query | {"hub.verify_token": "guess"})
    assert (accepted.status_code, accepted.text) == (200, "1503975839")
    assert accepted.headers["content-type"].startswith("text/plain")
    assert refused.status_code == 401


async def test_forged_missing_and_reserialised_signatures_are_refused_the_genuine_one_accepted(
    server: Running, shop: Shop, superuser: asyncpg.Connection
) -> None:
    customer = new_customer()
    body = inbound_body(shop.phone_number_id, customer, "Nimepokea ✅ asante")
    reserialised = json.dumps(json.loads(body), ensure_ascii=False).encode()
    url = f"{server.base_url}/webhooks/whatsapp"
    json_type = {"Content-Type": "application/json"}
    async with httpx.AsyncClient(timeout=30) as http:
        forged = await http.post(
            url, content=body, headers=json_type | {"X-Hub-Signature-256": signature(body, "wrong")}
        )
        missing = await http.post(url, content=body, headers=json_type)
        rewritten = await http.post(
            url, content=reserialised, headers=json_type | {"X-Hub-Signature-256": signature(body)}
        )
        assert (forged.status_code, missing.status_code, rewritten.status_code) == (401, 401, 401)
        assert customer not in await contacts_of(superuser, shop)
        genuine = await http.post(url, content=body, headers=json_type | {"X-Hub-Signature-256": signature(body)})
    assert genuine.status_code == 200, genuine.text
    await eventually(lambda: _has_contact(superuser, shop, customer), timeout=30, what="the genuine message applied")


async def _has_contact(superuser: asyncpg.Connection, shop: Shop, customer: str) -> bool:
    return customer in await contacts_of(superuser, shop)


async def test_two_shops_200_interleaved_inbound_messages_each_reach_their_own_shop_only(
    project: Project, server: Running, simulator: Simulator, superuser: asyncpg.Connection
) -> None:
    first, second = [await open_shop(project, server, superuser) for _ in range(2)]
    senders = {first.id: [new_customer() for _ in range(100)], second.id: [new_customer() for _ in range(100)]}
    interleaved = [
        (shop, sender)
        for pair in zip(senders[first.id], senders[second.id], strict=True)
        for shop, sender in zip((first, second), pair, strict=True)
    ]
    async with httpx.AsyncClient(timeout=60) as http:

        async def write(shop: Shop, sender: str) -> int:
            answer = await http.post(
                f"{simulator.base_url}/_sim/inbound",
                json={"phone_number_id": shop.phone_number_id, "from": sender, "text": f"Habari {sender[-4:]} ☕"},
            )
            return int(answer.json()["answer"])

        answers = []
        for start in range(0, len(interleaved), 20):
            answers += await asyncio.gather(*(write(shop, sender) for shop, sender in interleaved[start : start + 20]))
    assert answers == [200] * 200

    async def all_applied() -> bool:
        return all([len(await contacts_of(superuser, shop)) == 100 for shop in (first, second)])

    await eventually(all_applied, timeout=90, what="200 inbound messages applied")
    assert await contacts_of(superuser, first) == set(senders[first.id])
    assert await contacts_of(superuser, second) == set(senders[second.id])


async def test_a_number_no_shop_owns_is_acknowledged_and_delivered_nowhere(
    server: Running, simulator: Simulator, superuser: asyncpg.Connection
) -> None:
    stranger = new_customer()
    unknown_number = str(uuid.uuid4().int)[:15]
    answer = simulator.control(
        "POST", "inbound", json={"phone_number_id": unknown_number, "from": stranger, "text": "hi"}
    )
    assert answer.json()["answer"] == 200

    async def quarantined() -> bool:
        status = await superuser.fetchval(
            "SELECT status FROM soko_kernel.webhook_inbox WHERE receiver = 'whatsapp' AND event::text LIKE $1",
            f"%{unknown_number}%",
        )
        return status == "quarantined"

    await eventually(quarantined, timeout=30, what="the event quarantined")
    assert await superuser.fetchval("SELECT count(*) FROM whatsapp_contacts WHERE customer = $1", stranger) == 0


async def test_statuses_out_of_order_and_repeated_end_at_the_furthest(
    server: Running, simulator: Simulator, shop: Shop, superuser: asyncpg.Connection
) -> None:
    simulator.control("POST", "settings", json={"auto_statuses": []})
    try:
        outcomes = {}
        provider_ids = []
        for sequence, furthest in (
            (["read", "delivered", "sent", "read", "delivered"], "read"),
            (["delivered", "failed", "sent"], "delivered"),
            (["sent", "failed", "sent"], "failed"),
        ):
            customer = new_customer()
            await open_window(superuser, shop, customer)
            async with httpx.AsyncClient(base_url=server.base_url, timeout=30) as http:
                answer = await post_message(http, shop, {"to": customer, "text": "Order 17"}, str(uuid.uuid4()))
            row = await settled(superuser, answer.json()["id"])
            posted = simulator.control(
                "POST", "statuses", json={"id": row["provider_message_id"], "sequence": sequence, "error_code": 131026}
            )
            assert posted.json()["answers"] == [200] * len(sequence)
            outcomes[row["id"]] = furthest
            provider_ids.append(row["provider_message_id"])

        async def none_waiting() -> bool:
            """The furthest status can arrive first, so wait for every one of this test's events, not the first."""
            waiting = await superuser.fetchval(
                "SELECT count(*) FROM soko_kernel.webhook_inbox WHERE receiver = 'whatsapp' AND status = 'received'"
                " AND EXISTS (SELECT 1 FROM unnest($1::text[]) AS id WHERE event::text LIKE '%' || id || '%')",
                provider_ids,
            )
            return waiting == 0

        await eventually(none_waiting, timeout=30, what="every status event processed")
        statuses = {message_id: (await message_row(superuser, message_id))["status"] for message_id in outcomes}
        assert statuses == outcomes
    finally:
        simulator.control("POST", "settings", json={"auto_statuses": ["sent", "delivered", "read"]})


async def refused_as_too_large(url: str, body: bytes, headers: dict[str, str]) -> bool:
    """413, or the connection closed under a body still being sent (hypercorn answers 413 and stops reading)."""
    async with httpx.AsyncClient(timeout=60) as http:
        try:
            return (await http.post(url, content=body, headers=headers)).status_code == 413
        except (httpx.ReadError, httpx.WriteError, httpx.RemoteProtocolError):
            return True


async def test_bodies_up_to_three_megabytes_are_read_on_this_route_only(
    server: Running, shop: Shop, superuser: asyncpg.Connection
) -> None:
    customer, other = new_customer(), new_customer()
    big = inbound_body(shop.phone_number_id, customer, "x" * (2 * 1024 * 1024))
    too_big = inbound_body(shop.phone_number_id, other, "x" * (3 * 1024 * 1024 + 10))
    url = f"{server.base_url}/webhooks/whatsapp"
    json_type = {"Content-Type": "application/json"}
    async with httpx.AsyncClient(timeout=60) as http:
        accepted = await http.post(url, content=big, headers=json_type | {"X-Hub-Signature-256": signature(big)})
    assert accepted.status_code == 200, accepted.text
    assert await refused_as_too_large(url, too_big, json_type | {"X-Hub-Signature-256": signature(too_big)})
    assert await refused_as_too_large(
        f"{server.base_url}/auth/otp/request", big, json_type | {"Host": shop.headers["Host"]}
    )
    await eventually(lambda: _has_contact(superuser, shop, customer), timeout=30, what="the 2 MB webhook applied")
    assert other not in await contacts_of(superuser, shop)


def test_no_log_line_holds_a_number_token_or_message_text(server: Running, worker: Running) -> None:
    """Runs last in the module: every webhook above was logged by these processes by now."""
    assert_logs_keep_secrets([server, worker], "Nimepokea", "Habari", "Order 17")


def test_the_routes_are_in_a_valid_openapi_document(server: Running) -> None:
    document = httpx.get(f"{server.base_url}/openapi.json").json()
    validate(document)
    assert {"post"} <= set(document["paths"]["/messages/whatsapp"])
    assert {"get", "post"} <= set(document["paths"]["/webhooks/whatsapp"])
    assert "text/plain" in document["paths"]["/webhooks/whatsapp"]["get"]["responses"]["200"]["content"]
