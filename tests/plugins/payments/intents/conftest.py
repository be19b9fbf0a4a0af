"""Fixtures of the payment-intent tests: the whole stack as operators run it (real `soko serve` and `soko worker`
processes, PostgreSQL, Redis) with the Daraja simulator standing in for Safaricom, and shops with stock.

`Stack` is one running project: its servers, its worker, and the calls a storefront makes (cart, checkout, pay).
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest
import pytest_asyncio

from kernel.testing.project import START_TIMEOUT_S, Project, Running, eventually, free_port, wait_for
from kernel.testing.services import SESSION_CREDENTIALS_KEYS, Database, Servers
from kernel.testing.tenants import TestTenant, create_tenant
from plugins.payments_mpesa.simulator import DarajaSimulator

ENABLED = ["tenancy", "auth", "outbox", "idempotency", "commerce", "payments_mpesa", "payments"]
RECONCILE_AFTER = 5  # seconds a push waits for its callback before reconciliation asks the simulator
PRICE = 35_000  # KES 350.00


def intents_project(
    root: Path,
    servers: Servers,
    database: Database,
    daraja_url: str,
    *,
    enabled: list[str] = ENABLED,
    commerce: dict[str, Any] | None = None,
    ratelimit: dict[str, Any] | None = None,
) -> Project:
    project = Project(root=root)
    port = free_port()
    project.env = {
        "SOKO_DATABASE_URL": database.app_url,
        "SOKO_DATABASE_OWNER_URL": database.owner_url,
        "SOKO_REDIS_URL": servers.redis_url,
        "SOKO_QUEUE_NAME": f"soko-test-{uuid.uuid4().hex[:8]}",
        "SOKO_CREDENTIALS_KEYS": SESSION_CREDENTIALS_KEYS,
        "SOKO_BIND": f"127.0.0.1:{port}",
    }
    project.settings(
        enabled, database_pool_max=10, queue_reclaim_after_ms=2000, webhook_retry_seconds=1, webhook_max_attempts=3
    )
    project.plugin_config("tenancy", {"base_domains": ["localhost"]})
    project.plugin_config("commerce", commerce or {})
    project.plugin_config(
        "payments_mpesa",
        {
            "mode": "simulator",
            "base_url": daraja_url,
            "callback_base_url": f"http://127.0.0.1:{port}",
            "reconcile_after": RECONCILE_AFTER,
        },
    )
    project.plugin_config("payments", {"reconcile_interval_seconds": 1, "push_retry_after_seconds": 2})
    if ratelimit is not None:
        project.plugin_config("ratelimit", ratelimit)
    return project


@contextmanager
def serving(project: Project, port: int) -> Iterator[Running]:
    """`soko serve` on `port` (the one the callback URL names), yielded once `/healthz` answers."""
    running = project.start("serve", "--bind", f"127.0.0.1:{port}", name=f"serve-{port}")
    running.base_url = f"http://127.0.0.1:{port}"
    try:
        wait_for(lambda: _healthy(running), timeout=START_TIMEOUT_S, what=f"soko serve\n{running.log()}")
        yield running
    finally:
        running.stop()


def _healthy(running: Running) -> bool:
    if running.process.poll() is not None:
        raise AssertionError(f"soko serve exited:\n{running.log()}")
    try:
        return httpx.get(f"{running.base_url}/healthz", timeout=1).status_code == 200
    except httpx.TransportError:
        return False


@dataclass
class Stack:
    """A running project: servers (the first is the callback URL's), a worker, and a storefront client."""

    project: Project
    servers: list[Running]
    worker: Running | None
    simulator: DarajaSimulator
    database: Database
    http: httpx.AsyncClient = field(init=False)
    # Each placed order's access token: orders are read by the customer who placed them (X-Order-Token).
    order_tokens: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.http = httpx.AsyncClient(base_url=self.servers[0].base_url, timeout=30)

    async def shop(self, *, on_hand: int = 10, price: int = PRICE) -> TestTenant:
        """A new tenant with one product, `chai`, in stock."""
        connection = await asyncpg.connect(self.database.owner_url)
        try:
            tenant = await create_tenant(connection, prefix="pay")
            await add_product(connection, tenant.id, "chai", price, on_hand)
        finally:
            await connection.close()
        return tenant

    async def order(self, tenant: TestTenant, quantity: int = 1, phone: str = "0712345678") -> str:
        host = {"Host": tenant.host}
        cart = (await self.http.post("/carts", headers=host, json={})).json()["id"]
        added = await self.http.post(f"/carts/{cart}/items", headers=host, json={"sku": "chai", "quantity": quantity})
        assert added.status_code == 201, added.text
        placed = await self.http.post(
            "/checkout",
            headers=host | {"Idempotency-Key": f"checkout-{cart}"},
            json={"cart_id": cart, "customer_phone": phone},
        )
        assert placed.status_code == 201, placed.text
        order_id: str = placed.json()["id"]
        self.order_tokens[order_id] = placed.json()["access_token"]
        return order_id

    async def pay(
        self, tenant: TestTenant, order_id: str, phone: str = "+254712345678", *, key: str | None = None
    ) -> httpx.Response:
        return await self.http.post(
            "/payments/intents",
            headers={"Host": tenant.host, "Idempotency-Key": key or f"pay-{uuid.uuid4().hex}"},
            json={"order_id": order_id, "provider": "mpesa", "phone": phone},
        )

    async def intent(self, tenant: TestTenant, intent_id: str) -> dict[str, Any]:
        answer = await self.http.get(f"/payments/intents/{intent_id}", headers={"Host": tenant.host})
        assert answer.status_code == 200, answer.text
        document: dict[str, Any] = answer.json()
        return document

    async def settled(self, tenant: TestTenant, intent_id: str, *, timeout: float = 30) -> dict[str, Any]:
        """The intent once it left created/pending."""

        async def final() -> dict[str, Any] | None:
            intent = await self.intent(tenant, intent_id)
            return intent if intent["status"] not in ("created", "pending") else None

        settled: dict[str, Any] = await eventually(final, timeout=timeout, what=f"intent {intent_id} to settle")
        return settled

    async def order_status(self, tenant: TestTenant, order_id: str) -> str:
        headers = {"Host": tenant.host, "X-Order-Token": self.order_tokens[order_id]}
        answer = await self.http.get(f"/orders/{order_id}", headers=headers)
        assert answer.status_code == 200, answer.text
        status: str = answer.json()["status"]
        return status

    def worker_log(self) -> str:
        return self.worker.log() if self.worker else ""


async def add_product(connection: asyncpg.Connection, tenant_id: str, sku: str, price: int, on_hand: int) -> None:
    product = await connection.fetchval(
        "INSERT INTO products (tenant_id, sku, name, price_minor, currency) VALUES ($1::uuid, $2, $2, $3, 'KES') "
        "RETURNING id",
        tenant_id,
        sku,
        price,
    )
    await connection.execute(
        "INSERT INTO inventory (tenant_id, product_id, on_hand) VALUES ($1::uuid, $2, $3)", tenant_id, product, on_hand
    )


@contextmanager
def running_stack(
    project: Project, simulator: DarajaSimulator, database: Database, *, servers: int = 1, worker: bool = True
) -> Iterator[Stack]:
    port = int(project.env["SOKO_BIND"].rpartition(":")[2])
    with ExitStack() as stack:
        started = [stack.enter_context(serving(project, port))]
        started += [stack.enter_context(serving(project, free_port())) for _ in range(servers - 1)]
        running = stack.enter_context(project.worker()) if worker else None
        yield Stack(project, started, running, simulator, database)


@pytest_asyncio.fixture(scope="session", loop_scope="session")
async def daraja() -> AsyncIterator[DarajaSimulator]:
    simulator = DarajaSimulator(callback_delay=0.1, late_seconds=4.0)
    async with simulator.serve() as url:
        simulator.url = url  # type: ignore[attr-defined]
        yield simulator


@pytest.fixture(scope="session")
def intents_database(
    tmp_path_factory: pytest.TempPathFactory, soko_servers: Servers, soko_database: Database
) -> Database:
    project = intents_project(
        tmp_path_factory.mktemp("intents-migrate"),
        soko_servers,
        soko_database,
        "http://127.0.0.1:9",
        enabled=[*ENABLED, "ratelimit"],
    )
    project.migrate()
    return soko_database


@pytest.fixture
async def superuser(intents_database: Database) -> AsyncIterator[asyncpg.Connection]:
    connection = await asyncpg.connect(intents_database.owner_url)
    try:
        yield connection
    finally:
        await connection.close()


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def stack(
    tmp_path_factory: pytest.TempPathFactory, soko_servers: Servers, intents_database: Database, daraja: DarajaSimulator
) -> AsyncIterator[Stack]:
    """One project for the module: one server, one worker."""
    project = intents_project(tmp_path_factory.mktemp("intents"), soko_servers, intents_database, daraja.url)  # type: ignore[attr-defined]
    with running_stack(project, daraja, intents_database) as running:
        async with running.http:
            yield running


async def gather(*calls: Any) -> list[Any]:
    return list(await asyncio.gather(*calls))
