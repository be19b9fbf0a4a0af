"""Payment receipts over WhatsApp, end to end with real processes: a storefront checks out and pays with M-Pesa (the
Daraja simulator), the callback marks the order paid in the worker, and the customer gets one receipt at the Graph
simulator, however often the callback is delivered. A shop that has not connected WhatsApp sends none.
"""

from __future__ import annotations

import asyncio
import json
import secrets
import uuid
from collections.abc import AsyncIterator
from typing import Any

import asyncpg
import pytest
import pytest_asyncio

from kernel import Money, PaidOrder
from kernel.kernel import build_kernel
from kernel.settings import load_raw
from kernel.testing.project import Project, eventually
from kernel.testing.services import Database, Servers
from kernel.testing.tenants import TestTenant
from plugins.payments_mpesa.simulator import DarajaSimulator, stk_callback
from tests.plugins.messaging_whatsapp.conftest import (
    APP_SECRET,
    FAST,
    TOKEN_PREFIX,
    VERIFY_TOKEN,
    Simulator,
    assert_logs_keep_secrets,
    new_customer,
    run_cli,
)
from tests.plugins.payments.intents.conftest import ENABLED as PAYING
from tests.plugins.payments.intents.conftest import (
    Stack,
    daraja,  # noqa: F401 - the session's Daraja simulator, a fixture
    intents_project,
    running_stack,
)

NO_CALLBACK = "+254700000404"  # the Daraja simulator never calls back for it: the test delivers the callback
RECEIPT_TEMPLATE = {"name": "payment_receipt", "language": "en"}


def receipts_project(root: Any, servers: Servers, database: Database, daraja_url: str, graph_url: str) -> Project:
    project = intents_project(root, servers, database, daraja_url, enabled=[*PAYING, "messaging_whatsapp"])
    project.env |= {
        "SOKO_PLUGINS__MESSAGING_WHATSAPP__APP_SECRET": APP_SECRET,
        "SOKO_PLUGINS__MESSAGING_WHATSAPP__VERIFY_TOKEN": VERIFY_TOKEN,
    }
    templates = {**FAST["templates"], "receipt": RECEIPT_TEMPLATE}
    project.plugin_config(
        "messaging_whatsapp", {"mode": "simulator", "base_url": graph_url, **FAST, "templates": templates}
    )
    return project


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def stack(
    tmp_path_factory: pytest.TempPathFactory,
    soko_servers: Servers,
    soko_database: Database,
    daraja: DarajaSimulator,  # noqa: F811
    simulator: Simulator,
) -> AsyncIterator[Stack]:
    project = receipts_project(
        tmp_path_factory.mktemp("receipts"),
        soko_servers,
        soko_database,
        daraja.url,  # type: ignore[attr-defined]
        simulator.base_url,
    )
    project.migrate()
    with running_stack(project, daraja, soko_database) as running:
        simulator.control("POST", "settings", json={"webhook_url": f"{running.servers[0].base_url}/webhooks/whatsapp"})
        async with running.http:
            yield running


@pytest.fixture
async def superuser(soko_database: Database) -> AsyncIterator[asyncpg.Connection]:
    connection = await asyncpg.connect(soko_database.owner_url)
    try:
        yield connection
    finally:
        await connection.close()


def connect_whatsapp(stack: Stack, tenant: TestTenant) -> None:
    """`soko credentials set TENANT whatsapp`, as an operator onboards a shop."""
    phone_number_id = str(10**14 + secrets.randbelow(10**14))
    credentials = {
        "phone_number_id": phone_number_id,
        "waba_id": "2" + phone_number_id[1:],
        "access_token": TOKEN_PREFIX + secrets.token_hex(16),
    }
    stored = run_cli(stack.project, "credentials", "set", tenant.slug, "whatsapp", stdin=json.dumps(credentials))
    assert stored.returncode == 0, stored.stdout + stored.stderr


async def paid_three_times(
    stack: Stack, superuser: asyncpg.Connection, tenant: TestTenant, customer: str
) -> tuple[str, str]:
    """Check out as `customer`, pay, and deliver the simulator's success callback three times at once; the order
    id and the payment's checkout id (the callback's dedupe key)."""
    order_id = await stack.order(tenant, phone=customer)
    paying = await stack.pay(tenant, order_id, NO_CALLBACK)
    assert paying.status_code == 201, paying.text
    intent_id = paying.json()["id"]

    async def pending_ref() -> str | None:
        found: str | None = await superuser.fetchval(
            "SELECT provider_ref FROM payment_intents WHERE id = $1::uuid AND status = 'pending'", intent_id
        )
        return found

    checkout = await eventually(pending_ref, timeout=30, what=f"the push to be accepted\n{stack.worker_log()}")
    push = stack.simulator.pushes[checkout]
    path = "/webhooks/" + push.callback_url.split("/webhooks/", 1)[1]
    body = stk_callback(push)
    answers = await asyncio.gather(*(stack.http.post(path, json=body) for _ in range(3)))
    assert [answer.status_code for answer in answers] == [200] * 3
    try:
        settled = await eventually(lambda: _paid(stack, tenant, intent_id), timeout=30, what="the payment to succeed")
    except AssertionError as error:
        raise AssertionError(f"{error}\n{stack.worker_log()}") from None
    assert settled["status"] == "succeeded", settled
    assert await stack.order_status(tenant, order_id) == "paid"
    return order_id, checkout


async def _paid(stack: Stack, tenant: TestTenant, intent_id: str) -> dict[str, Any] | None:
    intent = await stack.intent(tenant, intent_id)
    return intent if intent["status"] not in ("created", "pending") else None


async def receipts_of(superuser: asyncpg.Connection, tenant: TestTenant) -> list[asyncpg.Record]:
    return await superuser.fetch(
        "SELECT * FROM whatsapp_messages WHERE tenant_id = $1::uuid AND purpose = 'receipt'", tenant.id
    )


async def final(superuser: asyncpg.Connection, tenant: TestTenant) -> asyncpg.Record | None:
    """The shop's one receipt once Meta reported it read (every status webhook of it has come back)."""
    rows = await receipts_of(superuser, tenant)
    return rows[0] if len(rows) == 1 and rows[0]["status"] in ("read", "failed") else None


async def test_a_paid_order_sends_one_receipt_however_often_the_callback_comes(
    stack: Stack, simulator: Simulator, superuser: asyncpg.Connection
) -> None:
    tenant = await stack.shop()
    connect_whatsapp(stack, tenant)
    customer = new_customer()
    await superuser.execute(  # the customer wrote to the shop today: the receipt may go as free text
        "INSERT INTO whatsapp_contacts (tenant_id, customer, last_inbound_at) VALUES ($1::uuid, $2, now())",
        tenant.id,
        customer,
    )
    order_id, checkout = await paid_three_times(stack, superuser, tenant, customer)
    receipt = await eventually(
        lambda: final(superuser, tenant), timeout=30, what=f"the receipt to be read\n{stack.worker_log()}"
    )
    assert receipt["status"] == "read", dict(receipt)
    assert receipt["idempotency_key"] == f"receipt:{order_id}"
    assert receipt["recipient"] == customer
    sent = simulator.accepted(customer)
    assert len(sent) == 1, sent
    assert sent[0]["type"] == "text"
    text = sent[0]["payload"]["text"]["body"]
    assert "KES 350.00" in text and order_id.replace("-", "")[:8].upper() in text
    inbox = await superuser.fetch(
        "SELECT status FROM soko_kernel.webhook_inbox WHERE receiver = 'mpesa' AND dedupe_key = $1", checkout
    )
    assert [row["status"] for row in inbox] == ["processed"]
    assert stack.worker is not None
    sends = [
        record
        for record in stack.worker.log_records()
        if record["msg"].startswith("Executing task messaging_whatsapp.send ") and record.get("tenant_id") == tenant.id
    ]
    assert sends, "the receipt's send job was not enqueued after the payment's commit (only the sweep sent it)"
    assert_logs_keep_secrets([*stack.servers, stack.worker], text)


async def test_outside_the_window_the_receipt_goes_as_the_receipt_template(
    stack: Stack, simulator: Simulator, superuser: asyncpg.Connection
) -> None:
    tenant = await stack.shop()
    connect_whatsapp(stack, tenant)
    customer = new_customer()  # has never written to the shop
    await paid_three_times(stack, superuser, tenant, customer)
    receipt = await eventually(
        lambda: final(superuser, tenant), timeout=30, what=f"the receipt to be read\n{stack.worker_log()}"
    )
    assert receipt["status"] == "read", dict(receipt)
    sent = simulator.accepted(customer)
    assert len(sent) == 1, sent
    template = sent[0]["payload"]["template"]
    assert template["name"] == RECEIPT_TEMPLATE["name"]
    assert template["components"][0]["parameters"][0] == {"type": "text", "text": "KES 350.00"}


async def test_a_shop_without_whatsapp_sends_no_receipt_and_logs_nothing_alarming(
    stack: Stack, simulator: Simulator, superuser: asyncpg.Connection
) -> None:
    tenant = await stack.shop()
    customer = new_customer()
    before = len(stack.worker_log().splitlines())
    await paid_three_times(stack, superuser, tenant, customer)
    # Nothing to wait for: a receipt would have been stored in the transaction that marked the order paid.
    assert await receipts_of(superuser, tenant) == []
    assert simulator.accepted(customer) == []
    assert stack.worker is not None
    lines = stack.worker_log().splitlines()[before:]
    alarming = [line for line in lines if '"level": "WARNING"' in line or '"level": "ERROR"' in line]
    assert not [line for line in alarming if "whatsapp" in line.lower()], alarming


async def test_two_order_paid_events_for_one_order_send_one_receipt_even_without_after_commit(
    stack: Stack, simulator: Simulator, superuser: asyncpg.Connection
) -> None:
    """The message row is the dedupe record: a second event for the order finds it. Emitted from a transaction of
    a job's own (as reconciliation settles a payment), nothing runs `after_commit`: the sweep sends it."""
    tenant = await stack.shop()
    connect_whatsapp(stack, tenant)
    customer = new_customer()
    order = PaidOrder(str(uuid.uuid4()), Money(35_000, "KES"), customer, str(uuid.uuid4()))
    with pytest.MonkeyPatch.context() as patch:
        for name, value in stack.project.environment().items():
            patch.setenv(name, value)
        kernel = build_kernel(load_raw(stack.project.root))
    async with kernel.running():
        for _ in range(2):
            async with kernel.tenant_transaction(tenant.id):
                await kernel.emit("order_paid", order=order)
    receipt = await eventually(
        lambda: final(superuser, tenant), timeout=30, what=f"the receipt to be read\n{stack.worker_log()}"
    )
    assert receipt["idempotency_key"] == f"receipt:{order.order_id}"
    assert len(simulator.accepted(customer)) == 1
