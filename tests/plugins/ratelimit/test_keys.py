"""What a request is counted by, and where its keys live, through the real app in process against the real Redis.

A stand-in for tenancy binds the tenant from a header (tenancy itself is tested in its own suite), so the
per-tenant and per-cart counts and the key scheme can be seen without tenants in the database.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from quart import Blueprint, Request, Response, request
from redis.asyncio import Redis
from redis.crc import key_slot

from kernel import CallNext, RequestMiddleware, Stage, hookimpl, tenant_id_var
from kernel.app import SokoApp, create_app
from kernel.kernel import build_kernel
from kernel.settings import load_raw
from kernel.testing.project import Project
from kernel.testing.services import Database, Servers
from tests.plugins.ratelimit.harness import COUNTING_TIMEOUT_MS

MAX_BODY = 1000


class HeaderTenancy(RequestMiddleware):
    stage = Stage.TENANCY

    async def __call__(self, request: Request, call_next: CallNext) -> Response:
        tenant_id_var.set(request.headers.get("x-test-tenant"))
        return await call_next()


class Checkout:
    @hookimpl
    def register_middleware(self) -> list[RequestMiddleware]:
        return [HeaderTenancy()]

    @hookimpl
    def register_blueprints(self) -> list[Blueprint]:
        blueprint = Blueprint("checkout", __name__)

        @blueprint.post("/checkout")
        @blueprint.post("/auth/login")
        async def accept() -> dict[str, Any]:
            return {"body": await request.get_json(silent=True)}

        @blueprint.get("/plain")
        @blueprint.post("/webhooks/unread")
        async def plain() -> dict[str, bool]:
            """Never reads the body."""
            return {"ok": True}

        return [blueprint]


@pytest.fixture(scope="module")
def services(
    tmp_path_factory: pytest.TempPathFactory, soko_servers: Servers, soko_database: Database
) -> dict[str, str]:
    """The stand-in views run in their tenant's transaction, so the database must be migrated."""
    project = Project(root=tmp_path_factory.mktemp("migrated"))
    project.env = {
        "SOKO_DATABASE_URL": soko_database.app_url,
        "SOKO_DATABASE_OWNER_URL": soko_database.owner_url,
        "SOKO_REDIS_URL": soko_servers.redis_url,
    }
    project.settings().migrate()
    return project.env


@pytest.fixture
def namespace() -> str:
    return f"soko-test-{uuid.uuid4().hex[:8]}"


@pytest.fixture
async def app(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, services: dict[str, str], namespace: str
) -> AsyncIterator[SokoApp]:
    for name, value in services.items() | {"SOKO_ENV": "test", "SOKO_QUEUE_NAME": namespace}.items():
        monkeypatch.setenv(name, value)
    project = Project(root=tmp_path).settings(["ratelimit"], max_body_bytes=MAX_BODY)
    project.plugin_config("ratelimit", {"redis_timeout_ms": COUNTING_TIMEOUT_MS})
    soko = create_app(build_kernel(load_raw(tmp_path), extra_plugins=[("checkout", Checkout())]))
    async with soko.test_app():
        yield soko


@pytest.fixture
async def redis(soko_servers: Servers) -> AsyncIterator[Redis]:
    async with Redis.from_url(soko_servers.redis_url) as client:
        yield client


async def checkout(app: SokoApp, tenant: str, cart: str) -> int:
    client = app.test_client()
    response = await client.post("/checkout", json={"cart_id": cart}, headers={"x-test-tenant": tenant})
    return response.status_code


async def test_payments_count_per_cart_and_per_tenant(app: SokoApp) -> None:
    """10 a minute per cart, so a busy store's 30 carts all check out; the store's ceiling is 600 a minute."""
    busy, other, one_cart = (str(uuid.uuid4()) for _ in range(3))
    assert [await checkout(app, busy, f"cart-{n}") for n in range(30)] == [200] * 30
    assert [await checkout(app, one_cart, "same") for _ in range(11)] == [200] * 10 + [429]
    assert await checkout(app, other, "same") == 200  # another tenant's cart has its own count
    client = app.test_client()
    answer = await client.post("/checkout", json={"cart_id": "c"}, headers={"x-test-tenant": busy})
    assert '"payments_tenant";q=600;w=60' in answer.headers["RateLimit-Policy"]


async def test_one_requests_keys_share_a_cluster_slot_and_hide_their_values(
    app: SokoApp, redis: Redis, namespace: str
) -> None:
    tenant = str(uuid.uuid4())
    client = app.test_client()
    await client.post(
        "/auth/login",
        json={"phone": "0712 345 678", "email": "Wanjiru@Example.com"},
        headers={"x-test-tenant": tenant},
    )
    await checkout(app, tenant, "cart-9")
    keys = [key.decode() async for key in redis.scan_iter(match=f"{{{tenant}}}:{namespace}:ratelimit:*")]
    kinds = [key.split(":")[-2] for key in keys]
    assert sorted(kinds) == ["cart_id", "client_ip", "email", "phone", "tenant"]
    assert len({key_slot(key.encode()) for key in keys}) == 1
    for secret in ("712345678", "wanjiru", "cart-9"):
        assert not any(secret in key.lower() for key in keys)


async def test_routes_without_a_tenant_use_the_fixed_tag(app: SokoApp, redis: Redis, namespace: str) -> None:
    await app.test_client().post("/auth/login", json={})
    assert [key async for key in redis.scan_iter(match=f"{{-}}:{namespace}:ratelimit:auth:client_ip:*")]


async def test_unlimited_routes_leave_redis_alone(app: SokoApp, redis: Redis, namespace: str) -> None:
    response = await app.test_client().get("/plain")
    assert response.status_code == 200 and "RateLimit" not in response.headers
    assert not [key async for key in redis.scan_iter(match=f"*:{namespace}:ratelimit:*")]


async def test_an_oversized_body_is_refused_before_any_policy_counts_it(app: SokoApp) -> None:
    """The kernel reads every body whole before the pipeline (docs/security.md), so an oversized one is a 413
    whether or not a policy or the view would read it, and no policy counts it."""
    oversized = {"data": "x" * MAX_BODY}
    client = app.test_client()
    for path in ("/auth/login", "/webhooks/unread"):
        refused = await client.post(path, json=oversized)
        assert (refused.status_code, "RateLimit" in refused.headers) == (413, False)
    counted = await client.post("/webhooks/unread", json={"small": True})
    assert counted.status_code == 200 and "RateLimit" in counted.headers


async def test_openapi_documents_the_429_of_limited_operations_only(app: SokoApp) -> None:
    document = await (await app.test_client().get("/openapi.json")).get_json()
    limited = document["paths"]["/checkout"]["post"]["responses"]["429"]
    assert {"RateLimit", "RateLimit-Policy", "Retry-After"} <= set(limited["headers"])
    assert "429" not in document["paths"]["/plain"]["get"]["responses"]
