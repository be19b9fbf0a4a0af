"""Money under concurrency and crashes, with real processes: one callback delivered five times at once to two
servers moves the intent once; a worker SIGKILLed in the middle of applying a callback leaves nothing half done,
and the next worker converges; a shop onboarded from the command line takes payments without a restart."""

from __future__ import annotations

import asyncio
import json
import signal
import subprocess
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import asyncpg
import pytest
import pytest_asyncio

from kernel.testing.project import SOKO, eventually
from kernel.testing.services import Database, Servers
from kernel.testing.tenants import TestTenant
from plugins.payments_mpesa.simulator import DarajaSimulator, Push, stk_callback
from tests.plugins.payments.intents.conftest import PRICE, Stack, add_product, intents_project, running_stack
from tests.plugins.payments_mpesa.conftest import new_credentials

NO_CALLBACK = "+254700000404"  # the simulator never calls back for it: the test delivers the callback


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def two_servers(
    tmp_path_factory: pytest.TempPathFactory, soko_servers: Servers, intents_database: Database, daraja: DarajaSimulator
) -> AsyncIterator[Stack]:
    project = intents_project(tmp_path_factory.mktemp("two"), soko_servers, intents_database, daraja.url)  # type: ignore[attr-defined]
    with running_stack(project, daraja, intents_database, servers=2) as stack:
        async with stack.http:
            yield stack


async def _pushed(stack: Stack, superuser: asyncpg.Connection, tenant: Any) -> tuple[str, str, Push]:
    order_id = await stack.order(tenant)
    intent_id = (await stack.pay(tenant, order_id, NO_CALLBACK)).json()["id"]

    async def ref() -> str | None:
        found: str | None = await superuser.fetchval(
            "SELECT provider_ref FROM payment_intents WHERE id = $1::uuid AND status = 'pending'", intent_id
        )
        return found

    checkout = await eventually(ref, timeout=20, what=f"the push to be accepted\n{stack.worker_log()}")
    return order_id, intent_id, stack.simulator.pushes[checkout]


async def _stock(superuser: asyncpg.Connection, tenant_id: str) -> tuple[int, int]:
    row = await superuser.fetchrow(
        "SELECT on_hand, reserved FROM inventory i JOIN products p ON p.id = i.product_id WHERE p.tenant_id = $1::uuid",
        tenant_id,
    )
    return row["on_hand"], row["reserved"]


def _path(push: Push) -> str:
    return "/webhooks/" + push.callback_url.split("/webhooks/", 1)[1]


async def test_one_callback_five_times_at_once_to_two_servers_moves_the_intent_once(
    two_servers: Stack, superuser: asyncpg.Connection
) -> None:
    stack = two_servers
    tenant = await stack.shop()
    order_id, intent_id, push = await _pushed(stack, superuser, tenant)
    body = stk_callback(push)
    urls = [f"{stack.servers[n % 2].base_url}{_path(push)}" for n in range(5)]
    answers = await asyncio.gather(*(stack.http.post(url, json=body) for url in urls))
    assert [answer.status_code for answer in answers] == [200] * 5
    assert all(answer.json() == {"ResultCode": 0, "ResultDesc": "Accepted"} for answer in answers)
    settled = await stack.settled(tenant, intent_id)
    assert settled["status"] == "succeeded"
    assert await stack.order_status(tenant, order_id) == "paid"
    assert await _stock(superuser, tenant.id) == (9, 0)  # sold once
    rows = await superuser.fetch(
        "SELECT status FROM soko_kernel.webhook_inbox WHERE receiver = 'mpesa' AND dedupe_key = $1", push.checkout_id
    )
    assert [row["status"] for row in rows] == ["processed"]
    assert stack.worker is not None
    records = stack.worker.log_records()
    paid_lines = [record for record in records if record.get("msg") == "payment succeeded, order paid"]
    assert [record["intent_id"] for record in paid_lines] == [intent_id]


@pytest_asyncio.fixture(loop_scope="session")
async def own_worker(
    tmp_path: Path, soko_servers: Servers, intents_database: Database, daraja: DarajaSimulator
) -> AsyncIterator[Stack]:
    """A stack of its own: the test kills its worker."""
    project = intents_project(tmp_path, soko_servers, intents_database, daraja.url)  # type: ignore[attr-defined]
    with running_stack(project, daraja, intents_database) as stack:
        async with stack.http:
            yield stack


async def test_a_worker_killed_while_applying_a_callback_leaves_nothing_half_done(
    own_worker: Stack, superuser: asyncpg.Connection
) -> None:
    stack = own_worker
    tenant = await stack.shop()
    order_id, intent_id, push = await _pushed(stack, superuser, tenant)
    lock = await asyncpg.connect(stack.database.owner_url)
    try:
        blocker = lock.transaction()
        await blocker.start()
        await lock.execute("SELECT 1 FROM payment_intents WHERE id = $1::uuid FOR UPDATE", intent_id)
        answer = await stack.http.post(_path(push), json=stk_callback(push))
        assert answer.status_code == 200

        async def worker_waits_on_the_intent() -> bool:
            return bool(
                await superuser.fetchval(
                    "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' "
                    "AND query LIKE 'UPDATE payment_intents SET status%'"
                )
            )

        await eventually(worker_waits_on_the_intent, timeout=20, what="the worker to be applying the callback")
        assert stack.worker is not None
        stack.worker.stop(signal.SIGKILL)
        await blocker.rollback()
    finally:
        await lock.close()
    assert (await stack.intent(tenant, intent_id))["status"] == "pending"
    assert await stack.order_status(tenant, order_id) == "pending_payment"
    with stack.project.worker(name="worker-after-kill") as restarted:
        settled = await stack.settled(tenant, intent_id, timeout=40)
        assert settled["status"] == "succeeded", restarted.log()

        async def processed() -> bool:
            status = await superuser.fetchval(
                "SELECT status FROM soko_kernel.webhook_inbox WHERE receiver = 'mpesa' AND dedupe_key = $1",
                push.checkout_id,
            )
            return status == "processed"

        await eventually(processed, timeout=30, what=f"the inbox row to be processed\n{restarted.log()}")
    assert await stack.order_status(tenant, order_id) == "paid"
    assert await _stock(superuser, tenant.id) == (9, 0)


async def test_a_shop_onboarded_from_the_command_line_takes_payments_without_a_restart(
    two_servers: Stack, superuser: asyncpg.Connection, daraja: DarajaSimulator
) -> None:
    stack = two_servers
    slug = f"cli{uuid.uuid4().hex[:10]}"
    created = stack.project.run("tenants", "create", slug, "--name", "CLI shop")
    assert created.returncode == 0, created.stdout + created.stderr
    credentials = new_credentials(daraja)
    stored = subprocess.run(
        [*SOKO, "credentials", "set", slug, "mpesa"],
        input=json.dumps(credentials),
        env=stack.project.environment(),
        cwd=stack.project.root,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert stored.returncode == 0, stored.stdout + stored.stderr
    tenant_id = await superuser.fetchval("SELECT id::text FROM tenants WHERE slug = $1", slug)
    await add_product(superuser, tenant_id, "chai", PRICE, 5)
    tenant = TestTenant(tenant_id, slug)
    order_id = await stack.order(tenant)
    intent_id = (await stack.pay(tenant, order_id)).json()["id"]
    settled = await stack.settled(tenant, intent_id)
    assert settled["status"] == "succeeded", stack.worker_log()
    assert await stack.order_status(tenant, order_id) == "paid"
    ref = await superuser.fetchval("SELECT provider_ref FROM payment_intents WHERE id = $1::uuid", intent_id)
    assert daraja.pushes[ref].shortcode == credentials["shortcode"]
