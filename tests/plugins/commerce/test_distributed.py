"""The shop's flows on the engines that scale: on a Redis Cluster (3 primaries, 3 replicas) a customer signs in by
code (outbox, tenancy, auth) and fifty concurrent checkouts across a 2-process server sell exactly what is in
stock; behind PgBouncer in transaction mode, with fewer server connections than the server's pool, checkout still
never oversells. The flows must not notice either."""

from __future__ import annotations

import asyncio
import secrets
import uuid
from collections.abc import Iterator
from pathlib import Path

import asyncpg
import httpx
import pytest

from kernel.testing.engines import RedisDeployment, pgbouncer, redis_deployment
from kernel.testing.project import Project
from kernel.testing.services import APP_PASSWORD, APP_ROLE, Database, Servers
from tests.plugins.commerce.conftest import StoreFactory, count_orders, shop_project

CONCURRENT = 50
IN_STOCK = 7
BOUNCER_POOL = 3


@pytest.fixture(scope="module")
def deployment() -> Iterator[RedisDeployment]:
    with redis_deployment("cluster") as started:
        yield started


@pytest.fixture
def cluster_shop(
    tmp_path: Path, soko_servers: Servers, shop_database: Database, deployment: RedisDeployment
) -> Project:
    project = shop_project(tmp_path, Servers(soko_servers.admin_url, deployment.engine.url), shop_database)
    project.env |= deployment.env
    return project


@pytest.fixture
def pooled_shop(tmp_path: Path, soko_servers: Servers, shop_database: Database) -> Iterator[Project]:
    """The shop with its app role's connections through PgBouncer: 3 server connections for 2 x 20 pooled."""
    project = shop_project(tmp_path, soko_servers, shop_database)
    direct = project.env["SOKO_DATABASE_URL"]
    with pgbouncer(direct, pool_size=BOUNCER_POOL, users={APP_ROLE: APP_PASSWORD}) as bouncer:
        project.env |= {"SOKO_DATABASE_URL": bouncer.url(direct), "SOKO_DATABASE_POOLER": "transaction"}
        yield project


async def test_concurrent_checkouts_behind_pgbouncer_never_oversell(
    pooled_shop: Project, new_store: StoreFactory, superuser: asyncpg.Connection
) -> None:
    with pooled_shop.serve("--workers", "2") as server:
        async with httpx.AsyncClient(base_url=server.base_url, timeout=60) as http:
            store = await new_store(http)
            await store.add_product("kanga", on_hand=IN_STOCK)
            carts = [await store.cart_with(("kanga", 1)) for _ in range(CONCURRENT)]
            answers = await asyncio.gather(*(store.checkout(cart, key=str(uuid.uuid4())) for cart in carts))
            product = await store.product("kanga")
            backends = await superuser.fetchval(
                "SELECT count(*) FROM pg_stat_activity WHERE usename = $1 AND datname = current_database()", APP_ROLE
            )
    assert sorted(answer.status_code for answer in answers) == [201] * IN_STOCK + [409] * (CONCURRENT - IN_STOCK)
    assert (product["on_hand"], product["reserved"], product["available"]) == (IN_STOCK, IN_STOCK, 0)
    assert await count_orders(superuser, store) == IN_STOCK
    assert backends <= BOUNCER_POOL  # the 2 processes' 40 pooled connections shared PgBouncer's 3


async def test_otp_sign_in_and_concurrent_checkouts_on_a_cluster(
    cluster_shop: Project, new_store: StoreFactory, superuser: asyncpg.Connection
) -> None:
    shop = cluster_shop
    phone = f"+25471{secrets.randbelow(10**7):07d}"
    with shop.serve("--workers", "2") as server:
        async with httpx.AsyncClient(base_url=server.base_url, timeout=30) as http:
            store = await new_store(http)
            requested = await http.post("/auth/otp/request", json={"phone": phone}, headers=store.host)
            assert requested.status_code == 202, requested.text
            body = await superuser.fetchval(
                "SELECT body FROM outbox_messages WHERE tenant_id = $1::uuid AND recipient = $2 "
                "ORDER BY created_at DESC LIMIT 1",
                store.tenant_id,
                phone,
            )
            code = next(word for word in body.replace(".", " ").split() if word.isdigit() and len(word) == 6)
            verified = await http.post("/auth/otp/verify", json={"phone": phone, "code": code}, headers=store.host)
            assert verified.status_code == 200, verified.text
            token = verified.json()["access_token"]
            me = await http.get("/auth/me", headers=store.host | {"Authorization": f"Bearer {token}"})
            assert (me.status_code, me.json()["tenant_id"]) == (200, store.tenant_id)

            await store.add_product("kanga", on_hand=IN_STOCK)
            carts = [await store.cart_with(("kanga", 1)) for _ in range(CONCURRENT)]
            answers = await asyncio.gather(*(store.checkout(cart, key=str(uuid.uuid4())) for cart in carts))
            product = await store.product("kanga")
    assert sorted(answer.status_code for answer in answers) == [201] * IN_STOCK + [409] * (CONCURRENT - IN_STOCK)
    assert (product["on_hand"], product["reserved"], product["available"]) == (IN_STOCK, IN_STOCK, 0)
    assert await count_orders(superuser, store) == IN_STOCK
