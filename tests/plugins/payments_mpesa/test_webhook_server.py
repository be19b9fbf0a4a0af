"""End to end through a real `soko serve`: the simulator's callbacks reach the shop's per-tenant URL, a
duplicated callback is stored once and acknowledged twice as Daraja expects, and a forged token is refused."""

from __future__ import annotations

import json
from pathlib import Path

import asyncpg
import httpx

from kernel.testing.project import Project, eventually, free_port
from kernel.testing.services import Database, Servers
from plugins.payments_mpesa.simulator import DarajaSimulator, Outcome
from tests.plugins.payments_mpesa.conftest import create_tenant, kernel_of, mpesa_project, new_credentials
from tests.plugins.payments_mpesa.test_provider import intent_for, provider_of


async def healthy(url: str) -> bool:
    try:
        async with httpx.AsyncClient(timeout=1) as client:
            return (await client.get(f"{url}/healthz")).status_code == 200
    except httpx.TransportError:
        return False


async def test_duplicated_callback_is_stored_once_and_forged_token_refused(
    tmp_path: Path, soko_servers: Servers, mpesa_database: Database, simulator: DarajaSimulator
) -> None:
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    project: Project = mpesa_project(
        tmp_path,
        soko_servers,
        mpesa_database,
        simulator.url,
        callback_base_url=url,  # type: ignore[attr-defined]
    )
    server = project.start("serve", "--bind", f"127.0.0.1:{port}", name="serve")
    try:
        await eventually(lambda: healthy(url), timeout=30, what=f"soko serve\n{server.log()}")
        with kernel_of(project) as kernel:
            pass
        async with kernel.running():
            shop = await create_tenant(mpesa_database.owner_url)
            await kernel.credentials.put(shop, "mpesa", new_credentials(simulator))
            intent = intent_for(shop, "+254700000002")
            simulator.expect(intent.customer_phone or "", Outcome.DUPLICATE_CALLBACK)
            started = await provider_of(kernel).initiate(intent)
            callback_url = simulator.pushes[started.provider_ref].callback_url

        def deliveries() -> list[int | None]:
            ours = [d for d in simulator.deliveries if started.provider_ref in json.dumps(d.body)]
            return [delivery.status for delivery in ours]

        await eventually(lambda: len(deliveries()) == 2, timeout=15, what="both callbacks")
        assert deliveries() == [200, 200], server.log()
        connection = await asyncpg.connect(mpesa_database.owner_url)
        try:
            rows = await connection.fetch(
                "SELECT receiver, path_tenant::text AS tenant FROM soko_kernel.webhook_inbox WHERE dedupe_key = $1",
                started.provider_ref,
            )
        finally:
            await connection.close()
        assert [(row["receiver"], row["tenant"]) for row in rows] == [("mpesa", shop)]

        body = json.dumps(simulator.deliveries[-1].body)
        async with httpx.AsyncClient(timeout=5) as client:
            forged = await client.post(callback_url[:-6] + "AAAAAA", content=body)
            genuine = await client.post(callback_url, content=body)
        assert forged.status_code == 404
        assert (genuine.status_code, genuine.json()) == (200, {"ResultCode": 0, "ResultDesc": "Accepted"})
        assert "254700000002" not in server.log()
    finally:
        server.stop()
