"""Fixtures of the commerce and idempotency tests: a database migrated with tenancy, auth, idempotency and
commerce, tenants with a signed-in staff member, and a client that talks to a real `soko serve` the way a shop's
app and its staff panel do.

Everything runs against the session's real PostgreSQL and Redis; tenants are reached by Host `{slug}.localhost`.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest

from kernel.testing.project import Project
from kernel.testing.services import Database, Servers
from kernel.testing.tenants import STAFF_PASSWORD, create_staff, create_tenant

ENABLED = ["tenancy", "auth", "outbox", "idempotency", "commerce"]  # auth sends its codes through outbox
POOL_MAX = 20


def shop_project(root: Path, servers: Servers, database: Database, **commerce: Any) -> Project:
    project = Project(root=root)
    project.env = {
        "SOKO_DATABASE_URL": database.app_url,
        "SOKO_DATABASE_OWNER_URL": database.owner_url,
        "SOKO_REDIS_URL": servers.redis_url,
        "SOKO_QUEUE_NAME": f"soko-test-{uuid.uuid4().hex[:8]}",
    }
    project.settings(ENABLED, database_pool_max=POOL_MAX)
    project.plugin_config("tenancy", {"base_domains": ["localhost"]})
    project.plugin_config("commerce", commerce)
    return project


@pytest.fixture(scope="session")
def shop_database(tmp_path_factory: pytest.TempPathFactory, soko_servers: Servers, soko_database: Database) -> Database:
    """The session database with the migrations of tenancy, auth, outbox, idempotency and commerce applied."""
    project = shop_project(tmp_path_factory.mktemp("shop-migrate"), soko_servers, soko_database)
    project.migrate()
    return soko_database


@pytest.fixture
def shop(tmp_path: Path, soko_servers: Servers, shop_database: Database) -> Project:
    return shop_project(tmp_path, soko_servers, shop_database)


@pytest.fixture
async def superuser(shop_database: Database) -> AsyncIterator[asyncpg.Connection]:
    """The migration owner (a superuser in tests): for set-up and for checking what the database holds."""
    connection = await asyncpg.connect(shop_database.owner_url)
    try:
        yield connection
    finally:
        await connection.close()


@dataclass
class Store:
    """One tenant's storefront over the real server: the calls a shop's app makes."""

    http: httpx.AsyncClient
    slug: str
    tenant_id: str
    staff: dict[str, str]  # the headers of a signed-in staff member: session cookie and CSRF token

    @property
    def host(self) -> dict[str, str]:
        return {"Host": f"{self.slug}.localhost"}

    async def add_product(self, sku: str, *, price_minor: int = 1000, on_hand: int = 10) -> dict[str, Any]:
        response = await self.http.post(
            "/admin/products",
            headers=self.host | self.staff,
            json={"sku": sku, "name": sku.title(), "price_minor": price_minor, "on_hand": on_hand},
        )
        assert response.status_code == 201, response.text
        return response.json()

    async def cart_with(self, *lines: tuple[str, int]) -> str:
        response = await self.http.post("/carts", headers=self.host, json={})
        assert response.status_code == 201, response.text
        cart_id: str = response.json()["id"]
        for sku, quantity in lines:
            added = await self.http.post(
                f"/carts/{cart_id}/items", headers=self.host, json={"sku": sku, "quantity": quantity}
            )
            assert added.status_code == 201, added.text
        return cart_id

    async def checkout(
        self, cart_id: str, *, key: str | None = None, phone: str = "0712 345 678", **extra: Any
    ) -> httpx.Response:
        headers = self.host | ({"Idempotency-Key": key} if key is not None else {})
        return await self.http.post(
            "/checkout", headers=headers, json={"cart_id": cart_id, "customer_phone": phone, **extra}
        )

    async def product(self, sku: str) -> dict[str, Any]:
        products = (await self.http.get("/products", headers=self.host)).json()["products"]
        return next(product for product in products if product["sku"] == sku)


StoreFactory = Callable[[httpx.AsyncClient], Awaitable[Store]]


@pytest.fixture
def new_store(superuser: asyncpg.Connection) -> StoreFactory:
    """A fresh tenant with a staff member signed in, as a Store talking through `http`."""

    async def factory(http: httpx.AsyncClient) -> Store:
        tenant = await create_tenant(superuser, prefix="s")
        _, email = await create_staff(superuser, tenant)
        return Store(http, tenant.slug, tenant.id, await sign_in(http, tenant.host, email))

    return factory


async def sign_in(http: httpx.AsyncClient, host: str, email: str, password: str = STAFF_PASSWORD) -> dict[str, str]:
    """Staff sign-in at POST /auth/login; the headers that carry its session (cookie, and the CSRF token)."""
    answer = await http.post("/auth/login", headers={"Host": host}, json={"email": email, "password": password})
    assert answer.status_code == 200, answer.text
    http.cookies.clear()  # cookies are sent explicitly: the jar would not match the Host header's domain
    cookies = {name: value for name, value in answer.cookies.items()}
    return {
        "Cookie": "; ".join(f"{name}={value}" for name, value in cookies.items()),
        "X-CSRF-Token": cookies.get("soko_csrf", ""),
    }


async def count_orders(superuser: asyncpg.Connection, store: Store) -> int:
    return await superuser.fetchval("SELECT count(*) FROM orders WHERE tenant_id = $1::uuid", store.tenant_id)
