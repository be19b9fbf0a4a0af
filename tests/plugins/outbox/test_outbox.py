"""The outbox channel passes the kernel's messaging contract against the real database, keeps each tenant's
messages to that tenant, and is readable with `soko outbox` and, in development only, over HTTP."""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import AsyncIterator
from dataclasses import replace

import httpx
import pytest

from kernel import Kernel, OutboundMessage, WebhookRequest
from kernel.kernel import build_kernel
from kernel.settings import load_raw
from kernel.testing.contracts import Handshake, MessagingChannelContract
from kernel.testing.project import Project, Running
from plugins.outbox.channel import OutboxChannel, recent
from tests.plugins.auth.conftest import Client, Tenant, new_phone

SECRET = "outbox-webhook-secret-for-tests"


@pytest.fixture
async def kernel(project: Project, monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[Kernel]:
    """A kernel of this project built and running in process, as the channel runs inside `soko serve`."""
    for name, value in project.environment(SOKO_PLUGINS__OUTBOX__WEBHOOK_SECRET=SECRET).items():
        if name.startswith("SOKO_"):
            monkeypatch.setenv(name, value)
    built = build_kernel(load_raw(project.root))
    async with built.running():
        yield built


def _signed(body: dict[str, object], secret: str = SECRET) -> WebhookRequest:
    raw = json.dumps(body).encode()
    signature = "sha256=" + hmac.new(secret.encode(), raw, hashlib.sha256).hexdigest()
    return WebhookRequest(method="POST", body=raw, headers={"X-Outbox-Signature": signature})


class TestOutboxContract(MessagingChannelContract):
    @pytest.fixture
    def channel(self, kernel: Kernel) -> OutboxChannel:
        channel = kernel.messaging["outbox"]
        assert isinstance(channel, OutboxChannel)
        return channel

    @pytest.fixture
    def outbound(self, tenant: Tenant) -> OutboundMessage:
        return OutboundMessage(tenant_id=tenant.id, to=new_phone(), idempotency_key="contract-1", text="Hello")

    @pytest.fixture
    def valid_webhook(self, tenant: Tenant) -> WebhookRequest:
        message = {"id": "in-1", "tenant": tenant.id, "from": "+254712345678", "text": "Asante"}
        return _signed({"messages": [message]})

    @pytest.fixture
    def forged_webhook(self, tenant: Tenant) -> WebhookRequest:
        return _signed(
            {"messages": [{"id": "in-1", "tenant": tenant.id, "from": "+254712345678", "text": "x"}]}, "wrong"
        )

    @pytest.fixture
    def subscription_handshake(self) -> Handshake | None:
        return None


async def test_messages_stay_with_their_tenant(kernel: Kernel, tenant: Tenant, other_tenant: Tenant) -> None:
    channel = kernel.messaging["outbox"]
    message = OutboundMessage(tenant_id=tenant.id, to=new_phone(), idempotency_key="isolation", text="for A only")
    first = await channel.send(message)
    assert (
        await channel.send(replace(message, tenant_id=other_tenant.id))
    ).provider_message_id != first.provider_message_id
    async with kernel.tenant_transaction(tenant.id):
        mine = await recent(10, message.to)
    async with kernel.tenant_transaction(other_tenant.id):
        theirs = await recent(10, message.to)
    assert [row["id"] for row in mine] == [first.provider_message_id]
    assert [row["id"] for row in theirs] != [first.provider_message_id]


async def test_soko_outbox_shows_the_code_just_requested(project: Project, server: Running, tenant: Tenant) -> None:
    phone = new_phone()
    async with Client(server, tenant) as client:
        assert (await client.call("POST", "/auth/otp/request", json={"phone": phone})).status_code == 202
    result = project.run("outbox", "--tenant", tenant.slug, "--to", phone, "--json")
    assert result.returncode == 0, result.stderr
    messages = json.loads(result.stdout)
    assert len(messages) == 1
    assert messages[0]["recipient"] == phone
    assert "Your sign-in code is" in messages[0]["body"]


async def test_route_exists_in_development_only(project: Project, server: Running, tenant: Tenant) -> None:
    phone = new_phone()
    async with Client(server, tenant) as client:
        await client.call("POST", "/auth/otp/request", json={"phone": phone})
        assert (await client.call("GET", "/outbox/messages")).status_code == 404
    with project.serve(SOKO_ENV="development") as development:
        response = httpx.get(
            f"{development.base_url}/outbox/messages", params={"to": phone}, headers={"Host": tenant.host}
        )
    assert response.status_code == 200
    [message] = response.json()["messages"]
    assert message["recipient"] == phone
