"""A worker SIGKILLed while Meta holds its send: the message reaches Meta exactly once.

Meta takes no idempotency key. The simulator takes the message and answers late; the worker dies before the
answer. The message's own id comes back in Meta's `sent` status webhook (biz_opaque_callback_data), which marks
it taken, so neither the redelivered job nor the sweep sends it again.
"""

from __future__ import annotations

import signal
import uuid

import asyncpg
import httpx

from kernel.testing.project import Project, Running, eventually, wait_for
from tests.plugins.messaging_whatsapp.conftest import Shop, Simulator, message_row, new_customer, open_window
from tests.plugins.messaging_whatsapp.test_sending import post_message


async def test_a_worker_killed_mid_send_delivers_exactly_once(
    project: Project, server: Running, simulator: Simulator, shop: Shop, superuser: asyncpg.Connection
) -> None:
    customer = new_customer()
    await open_window(superuser, shop, customer)
    simulator.control("POST", "delays", json={"to": customer, "seconds": 30})
    with project.worker(name="doomed") as doomed:
        async with httpx.AsyncClient(base_url=server.base_url, timeout=30) as http:
            answer = await post_message(http, shop, {"to": customer, "text": "Your parcel is here"}, str(uuid.uuid4()))
        message_id = answer.json()["id"]
        wait_for(lambda: len(simulator.accepted(customer)) == 1, timeout=30, what="Meta to take the message")
        doomed.stop(signal.SIGKILL)
    # The worker died before Meta's answer (its `sent` status webhook may have marked the message taken already).
    assert [message["answered"] for message in simulator.accepted(customer)] == [False]
    with project.worker(name="survivor"):

        async def taken() -> asyncpg.Record | None:
            row = await message_row(superuser, message_id)
            return row if row["status"] in ("sent", "delivered", "read") else None

        row = await eventually(taken, timeout=60, what="the message marked taken by its status webhook")
        assert row["lease_until"] is None  # nothing holds it: neither the job nor the sweep will pick it again
    [accepted] = simulator.accepted(customer)
    assert accepted["id"] == row["provider_message_id"]
    assert accepted["callback_data"] == message_id
