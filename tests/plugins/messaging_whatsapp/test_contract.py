"""The kernel's messaging-channel contract, passed by the whatsapp channel against the Graph API simulator.

The channel runs in an in-process kernel on the real database and Redis; Meta is the simulator on loopback.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest

from kernel import MessagingChannel, OutboundMessage, SendErrorCode, WebhookRequest
from kernel.kernel import Kernel, build_kernel
from kernel.settings import load_raw
from kernel.testing.contracts import Handshake, PlatformChannelContract
from kernel.testing.services import Database, Servers
from plugins.messaging_whatsapp import simulator
from tests.plugins.messaging_whatsapp.conftest import (
    APP_SECRET,
    VERIFY_TOKEN,
    new_customer,
    whatsapp_project,
)

PHONE_NUMBER_ID = str(uuid.uuid4().int)[:15]


@pytest.fixture(scope="module")
async def graph_url() -> AsyncIterator[str]:
    async with simulator.serve(app_secret=APP_SECRET, auto_statuses=()) as url:
        yield url


@pytest.fixture(scope="module")
async def kernel(
    tmp_path_factory: pytest.TempPathFactory, soko_servers: Servers, whatsapp_database: Database, graph_url: str
) -> AsyncIterator[Kernel]:
    project = whatsapp_project(tmp_path_factory.mktemp("wa-contract"), soko_servers, whatsapp_database, graph_url)
    with pytest.MonkeyPatch.context() as patch:
        for name in [key for key in os.environ if key.startswith("SOKO_")]:
            patch.delenv(name)
        for name, value in project.environment().items():
            if name.startswith("SOKO_"):
                patch.setenv(name, value)
        built = build_kernel(load_raw(Path(project.root)))
    async with built.running():
        yield built


@pytest.fixture(scope="module")
async def tenant_id(kernel: Kernel, whatsapp_database: Database) -> str:
    connection = await asyncpg.connect(whatsapp_database.owner_url)
    try:
        slug = f"c{uuid.uuid4().hex[:12]}"
        found: str = await connection.fetchval(
            "INSERT INTO tenants (slug, name) VALUES ($1, $2) RETURNING id::text", slug, slug
        )
    finally:
        await connection.close()
    values = {"phone_number_id": PHONE_NUMBER_ID, "waba_id": "42", "access_token": "EAAGtest-contract-token"}
    await kernel.credentials.put(found, "whatsapp", values)
    return found


async def customer_in_window(whatsapp_database: Database, tenant_id: str) -> str:
    customer = new_customer()
    connection = await asyncpg.connect(whatsapp_database.owner_url)
    try:
        await connection.execute(
            "INSERT INTO whatsapp_contacts (tenant_id, customer, last_inbound_at) VALUES ($1::uuid, $2, now())",
            tenant_id,
            customer,
        )
    finally:
        await connection.close()
    return customer


async def program(graph_url: str, to: str, *codes: int) -> None:
    """The simulator runs in this event loop: talk to it without blocking the loop."""
    async with httpx.AsyncClient() as http:
        (await http.post(f"{graph_url}/_sim/failures", json={"to": to, "codes": list(codes)})).raise_for_status()


def meta_webhook(secret: str = APP_SECRET) -> WebhookRequest:
    _, value = simulator.inbound_value("254712345678", "Nataka kulipa ✅")
    inbound = simulator.webhook_document(PHONE_NUMBER_ID, value)
    accepted = simulator.Accepted("wamid.A", PHONE_NUMBER_ID, "254712345678", "text", {}, None, 0.0)
    inbound["entry"][0]["changes"][0]["value"] |= simulator.status_value(accepted, "delivered")
    body, signature = simulator.signed_body(inbound, secret.encode())
    return WebhookRequest(method="POST", body=body, headers={"X-Hub-Signature-256": signature})


class TestWhatsAppChannel(PlatformChannelContract):
    @pytest.fixture
    def channel(self, kernel: Kernel) -> MessagingChannel:
        return kernel.messaging["whatsapp"]

    @pytest.fixture
    async def outbound(self, tenant_id: str, whatsapp_database: Database) -> OutboundMessage:
        customer = await customer_in_window(whatsapp_database, tenant_id)
        return OutboundMessage(tenant_id=tenant_id, to=customer, idempotency_key=str(uuid.uuid4()), text="Paid")

    @pytest.fixture
    def valid_webhook(self) -> WebhookRequest:
        return meta_webhook()

    @pytest.fixture
    def forged_webhook(self) -> WebhookRequest:
        return meta_webhook("not-the-app-secret")

    @pytest.fixture
    def subscription_handshake(self) -> Handshake:
        query = {"hub.mode": "subscribe", "hub.verify_token": VERIFY_TOKEN, "hub.challenge": "8841"}
        return Handshake(query, "8841", query | {"hub.verify_token": "guessed"})

    @pytest.fixture
    async def flaky_outbound(self, outbound: OutboundMessage, graph_url: str) -> OutboundMessage:
        await program(graph_url, outbound.to, 130429)
        return outbound

    @pytest.fixture
    async def refusals(
        self, outbound: OutboundMessage, graph_url: str, whatsapp_database: Database, tenant_id: str
    ) -> list[tuple[OutboundMessage, SendErrorCode]]:
        cases = [
            (131050, SendErrorCode.OPTED_OUT),
            (131026, SendErrorCode.INVALID_RECIPIENT),
            (80007, SendErrorCode.RATE_LIMITED),
            (190, SendErrorCode.MISCONFIGURED),
        ]
        found = []
        for code, expected in cases:
            to = await customer_in_window(whatsapp_database, tenant_id)
            await program(graph_url, to, code)
            found.append((replace(outbound, to=to, idempotency_key=str(uuid.uuid4())), expected))
        return found

    @pytest.fixture
    def delivered(self, graph_url: str) -> Callable[[OutboundMessage], Any]:
        async def count(message: OutboundMessage) -> int:
            async with httpx.AsyncClient() as http:
                answer = await http.get(f"{graph_url}/_sim/messages", params={"to": message.to})
            return int(answer.json()["count"])

        return count
