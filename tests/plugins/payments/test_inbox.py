"""The kernel's webhook inbox over real processes: two `soko serve`, a `soko worker`, the fakepay provider.

Delivery is checked where it lands: fakepay's hook writes one row per delivery into a tenant-owned table, so a
doubled delivery would show as two rows, and the inbox row says what became of each event.
"""

from __future__ import annotations

import asyncio
import os
import signal
from collections.abc import AsyncIterator, Iterator
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest

from kernel import inbox
from kernel.testing.project import Project, Running, eventually
from kernel.testing.services import Database, Servers
from tests.plugins.payments.conftest import TenantRow, create_tenant, local_kernel, pay_project, signed

TIMEOUT = 60.0


@pytest.fixture(scope="module")
def stack_project(
    tmp_path_factory: pytest.TempPathFactory, soko_servers: Servers, pay_database: Database, fakepay_site: Path
) -> Project:
    root = tmp_path_factory.mktemp("inbox")
    project = pay_project(root, soko_servers, pay_database, fakepay_site, webhook_retry_seconds=1)
    (root / "hold").mkdir()
    project.plugin_config("fakepay", {"hold_dir": str(root / "hold")})
    return project


@pytest.fixture(scope="module")
def servers(stack_project: Project) -> Iterator[list[Running]]:
    with ExitStack() as stack:
        yield [stack.enter_context(stack_project.serve()) for _ in range(2)]


@pytest.fixture
def worker(stack_project: Project) -> Iterator[Running]:
    with stack_project.worker() as running:
        yield running


@pytest.fixture
async def superuser(pay_database: Database) -> AsyncIterator[asyncpg.Connection]:
    connection = await asyncpg.connect(pay_database.owner_url)
    try:
        yield connection
    finally:
        await connection.close()


async def shop(project: Project, superuser: asyncpg.Connection, account: str | None = None) -> TenantRow:
    """A tenant; with `account`, fakepay credentials whose routing key it is."""
    tenant = await create_tenant(superuser)
    if account is not None:
        with local_kernel(project) as kernel:
            async with kernel.running():
                await kernel.credentials.put(tenant.id, "fakepay", {"account": account, "api_key": "k"})
    return tenant


def path_for(project: Project, tenant: TenantRow) -> str:
    with local_kernel(project) as kernel:
        return kernel.webhook_path("payments", "fakepay", tenant.id)


def callback(ref: str, account: str | None, **extra: Any) -> tuple[bytes, dict[str, str]]:
    body = {"ref": ref, "status": "captured", "amount_minor": 1000, "currency": "KES", "receipt": "QAB1CD2EF3"}
    return signed(body | ({"account": account} if account else {}) | extra)


async def post(server: Running, path: str, payload: tuple[bytes, dict[str, str]]) -> httpx.Response:
    async with httpx.AsyncClient(base_url=server.base_url, timeout=30) as http:
        return await http.post(path, content=payload[0], headers=payload[1])


async def inbox_status(superuser: asyncpg.Connection, ref: str) -> str | None:
    return await superuser.fetchval(
        "SELECT status FROM soko_kernel.webhook_inbox WHERE receiver = 'fakepay' AND dedupe_key = $1", ref
    )


async def deliveries(superuser: asyncpg.Connection, ref: str) -> list[asyncpg.Record]:
    return await superuser.fetch(
        "SELECT tenant_id::text, bound_tenant FROM fakepay_deliveries WHERE dedupe_key = $1", ref
    )


async def settled(superuser: asyncpg.Connection, ref: str, status: str = "processed") -> None:
    async def done() -> bool:
        return await inbox_status(superuser, ref) == status

    await eventually(done, timeout=TIMEOUT, what=f"inbox event {ref} to be {status}")


async def test_five_concurrent_copies_to_two_servers_are_applied_once(
    stack_project: Project, servers: list[Running], worker: Running, superuser: asyncpg.Connection
) -> None:
    account = f"acct-{os.urandom(4).hex()}"
    tenant = await shop(stack_project, superuser, account)
    ref = f"dup-{os.urandom(4).hex()}"
    payload = callback(ref, account)
    responses = await asyncio.gather(*(post(servers[n % 2], "/webhooks/payments/fakepay", payload) for n in range(5)))
    assert [response.status_code for response in responses] == [200] * 5
    await settled(superuser, ref)
    assert [tuple(row) for row in await deliveries(superuser, ref)] == [(tenant.id, tenant.id)]
    count = await superuser.fetchval("SELECT count(*) FROM soko_kernel.webhook_inbox WHERE dedupe_key = $1", ref)
    assert count == 1
    again = await post(servers[1], "/webhooks/payments/fakepay", payload)
    assert again.status_code == 200
    assert len(await deliveries(superuser, ref)) == 1


async def test_after_commit_work_of_a_hook_runs_once_committed_with_its_tenant_and_never_after_a_rollback(
    stack_project: Project, servers: list[Running], worker: Running, superuser: asyncpg.Connection
) -> None:
    account = f"acct-{os.urandom(4).hex()}"
    tenant = await shop(stack_project, superuser, account)
    applied, refused = f"ac-{os.urandom(4).hex()}", f"aq-{os.urandom(4).hex()}"
    for ref, receipt in ((refused, "QUARANTINE"), (applied, "QAB1CD2EF3")):
        answer = await post(servers[0], "/webhooks/payments/fakepay", callback(ref, account, receipt=receipt))
        assert answer.status_code == 200
    await settled(superuser, refused, "quarantined")
    await settled(superuser, applied)

    def ran(ref: str) -> list[dict[str, Any]]:
        return [
            record
            for record in worker.log_records()
            if record.get("msg") == "fakepay after commit" and record.get("dedupe_key") == ref
        ]

    await eventually(lambda: ran(applied), timeout=TIMEOUT, what="the after_commit work of the applied event")
    assert [record["bound_tenant"] for record in ran(applied)] == [tenant.id]
    assert ran(refused) == []


async def test_path_token_names_the_tenant_and_a_forged_one_never_reaches_the_receiver(
    stack_project: Project, servers: list[Running], worker: Running, superuser: asyncpg.Connection
) -> None:
    tenant = await shop(stack_project, superuser)
    path = path_for(stack_project, tenant)
    ref = f"tok-{os.urandom(4).hex()}"
    assert (await post(servers[0], path, callback(ref, None))).status_code == 200
    await settled(superuser, ref)
    assert [tuple(row) for row in await deliveries(superuser, ref)] == [(tenant.id, tenant.id)]

    forged_ref = f"forged-{os.urandom(4).hex()}"
    token = path.rsplit("/", 1)[1]
    other = await create_tenant(superuser)
    for forged in (
        path[:-1] + ("0" if path[-1] != "0" else "1"),  # one character off
        path.replace(token, other.id.replace("-", "") + token[32:]),  # another tenant's id, this tenant's MAC
        path.replace("/fakepay/", "/fakepay/x"),
    ):
        response = await post(servers[1], forged, callback(forged_ref, None))
        assert (response.status_code, response.json()["code"]) == (404, "not_found")
    assert await inbox_status(superuser, forged_ref) is None


async def test_unroutable_and_contradicting_events_are_quarantined(
    stack_project: Project, servers: list[Running], worker: Running, superuser: asyncpg.Connection
) -> None:
    account = f"acct-{os.urandom(4).hex()}"
    owner = await shop(stack_project, superuser, account)
    stranger = await shop(stack_project, superuser)
    unknown, contradicting = f"unk-{os.urandom(4).hex()}", f"bad-{os.urandom(4).hex()}"
    assert (await post(servers[0], "/webhooks/payments/fakepay", callback(unknown, "nobody"))).status_code == 200
    stranger_path = path_for(stack_project, stranger)
    assert (await post(servers[1], stranger_path, callback(contradicting, account))).status_code == 200
    for ref in (unknown, contradicting):
        await settled(superuser, ref, "quarantined")
        assert await deliveries(superuser, ref) == []
    reasons = await superuser.fetch(
        "SELECT reason FROM soko_kernel.webhook_inbox WHERE dedupe_key = ANY($1) ORDER BY dedupe_key",
        [unknown, contradicting],
    )
    assert [row["reason"] for row in reasons] == [
        "the URL's tenant and the event's tenant disagree",
        "no tenant could be found for the event",
    ]
    assert owner.id not in worker.log()


async def test_an_event_whose_job_was_lost_is_swept_up(
    stack_project: Project, servers: list[Running], worker: Running, superuser: asyncpg.Connection
) -> None:
    account = f"acct-{os.urandom(4).hex()}"
    tenant = await shop(stack_project, superuser, account)
    ref = f"lost-{os.urandom(4).hex()}"
    event = {
        "provider": "fakepay",
        "dedupe_key": ref,
        "provider_ref": ref,
        "status": "captured",
        "tenant_hint": account,
    }
    await superuser.execute(  # stored as the route stores it, but never enqueued
        "SELECT soko_inbox_add('payments', 'fakepay', $1, 'PaymentEvent', $2::jsonb, NULL)", ref, _json(event)
    )
    await settled(superuser, ref)
    assert [tuple(row) for row in await deliveries(superuser, ref)] == [(tenant.id, tenant.id)]


async def test_a_worker_killed_mid_delivery_converges_without_doubling(
    stack_project: Project, servers: list[Running], superuser: asyncpg.Connection
) -> None:
    account = f"acct-{os.urandom(4).hex()}"
    tenant = await shop(stack_project, superuser, account)
    hold = stack_project.root / "hold"
    (hold / "started").unlink(missing_ok=True)
    (hold / "hold").touch()
    ref = f"kill-{os.urandom(4).hex()}"
    try:
        with stack_project.worker(name="doomed") as doomed:
            assert (await post(servers[0], "/webhooks/payments/fakepay", callback(ref, account))).status_code == 200
            await eventually(lambda: (hold / "started").exists(), timeout=TIMEOUT, what="the delivery to start")
            doomed.stop(signal.SIGKILL)
    finally:
        (hold / "hold").unlink()
    assert await inbox_status(superuser, ref) == "received"
    assert await deliveries(superuser, ref) == [], "the killed job's transaction must not have committed"
    with stack_project.worker(name="replacement"):
        await settled(superuser, ref)
    assert [tuple(row) for row in await deliveries(superuser, ref)] == [(tenant.id, tenant.id)]
    attempts = await superuser.fetchval("SELECT attempts FROM soko_kernel.webhook_inbox WHERE dedupe_key = $1", ref)
    assert attempts >= 2


async def test_copies_of_an_event_being_applied_do_nothing_and_use_no_attempt(
    stack_project: Project, servers: list[Running], superuser: asyncpg.Connection
) -> None:
    """Each delivery of a duplicate enqueues the event again; those jobs must neither wait on the one applying it
    nor count attempts, or enough duplicates would quarantine an event that is being applied."""
    account = f"acct-{os.urandom(4).hex()}"
    tenant = await shop(stack_project, superuser, account)
    hold = stack_project.root / "hold"
    (hold / "started").unlink(missing_ok=True)
    (hold / "hold").touch()
    ref = f"lease-{os.urandom(4).hex()}"
    try:
        with stack_project.worker(name="leaseholder"):
            assert (await post(servers[0], "/webhooks/payments/fakepay", callback(ref, account))).status_code == 200
            await eventually(lambda: (hold / "started").exists(), timeout=TIMEOUT, what="the delivery to start")
            inbox_id = await superuser.fetchval("SELECT id FROM soko_kernel.webhook_inbox WHERE dedupe_key = $1", ref)
            with local_kernel(stack_project) as kernel:
                async with kernel.running():
                    copies = [inbox.process(kernel, inbox_id) for _ in range(4)]
                    outcomes = await asyncio.wait_for(asyncio.gather(*copies), timeout=TIMEOUT)
            assert outcomes == ["done"] * 4
            (hold / "release").touch()
            await settled(superuser, ref)
    finally:
        for name in ("hold", "release", "started"):
            (hold / name).unlink(missing_ok=True)
    attempts = await superuser.fetchval("SELECT attempts FROM soko_kernel.webhook_inbox WHERE id = $1", inbox_id)
    assert attempts == 1
    assert [tuple(row) for row in await deliveries(superuser, ref)] == [(tenant.id, tenant.id)]


def _json(document: dict[str, Any]) -> str:
    import json

    return json.dumps(document)
