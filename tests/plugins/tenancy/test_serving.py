"""Over a real `soko serve`: the statuses and codes a client sees, and tenant changes made by other processes
(the `soko tenants` CLI) reaching the server's cache at once, although its TTL is an hour; and the change
listener surviving the loss of its Redis connection."""

from __future__ import annotations

import uuid
from collections.abc import Awaitable

import asyncpg
import httpx
from redis.asyncio import Redis

from kernel.app import create_app
from kernel.testing.project import Project, eventually
from kernel.testing.services import Servers
from plugins.tenancy.changes import channel
from tests.plugins.tenancy.conftest import TENANCY_CONFIG, KernelFactory, create_tenant


async def test_statuses_and_codes_over_the_real_server(project: Project, superuser: asyncpg.Connection) -> None:
    active = await create_tenant(superuser, items=1)
    suspended = await create_tenant(superuser, status="suspended")
    expectations = [
        ({"Host": active.host}, 200, None),
        ({"Host": "localhost"}, 404, "tenant_not_found"),  # no tenant named at all
        ({"Host": "nosuchstore.localhost"}, 404, "tenant_not_found"),
        ({"Host": "nosuchstore.example"}, 404, "tenant_not_found"),
        ({"Host": "localhost", "X-Tenant-ID": str(uuid.uuid4())}, 404, "tenant_not_found"),
        ({"Host": suspended.host}, 403, "tenant_suspended"),
        ({"Host": "localhost", "X-Tenant-ID": suspended.id}, 403, "tenant_suspended"),
    ]
    with project.serve() as server:
        async with httpx.AsyncClient(base_url=server.base_url) as http:
            for headers, status, code in expectations:
                response = await http.get("/probe/items", headers=headers)
                assert (headers, response.status_code) == (headers, status)
                if code is not None:
                    assert response.headers["content-type"] == "application/problem+json"
                    assert response.json()["code"] == code
            assert (await http.get("/healthz", headers={"Host": "nosuchstore.localhost"})).status_code == 200
    logged = [record for record in server.log_records() if record.get("msg") == "tenant not found"]
    assert {"host": "nosuchstore.example", "tenant_header": None} in [
        {key: record.get(key) for key in ("host", "tenant_header")} for record in logged
    ]


async def test_changes_made_by_the_cli_reach_a_running_server_at_once(project: Project) -> None:
    project.plugin_config("tenancy", TENANCY_CONFIG | {"cache_ttl_seconds": 3600})
    slug = f"cli-{uuid.uuid4().hex[:8]}"
    domain = f"{slug}.example"
    with project.serve() as server:
        async with httpx.AsyncClient(base_url=server.base_url) as http:

            async def status(host: str) -> int:
                return (await http.get("/probe/items", headers={"Host": host})).status_code

            async def answers(host: str, expected: int) -> bool:
                return await status(host) == expected

            assert await status(f"{slug}.localhost") == 404  # now cached as unknown, for an hour
            for command, host, expected in [
                (["create", slug, "--name", "Duka la CLI"], f"{slug}.localhost", 200),
                (["suspend", slug], f"{slug}.localhost", 403),
                (["activate", slug], f"{slug}.localhost", 200),
                (["add-domain", slug, domain], domain, 200),
                (["remove-domain", slug, domain], domain, 404),
            ]:
                if command[0] == "add-domain":
                    assert await status(domain) == 404  # cached as unknown before it is added
                result = project.run("tenants", *command)
                assert result.returncode == 0, result.stderr
                await eventually(
                    lambda: answers(host, expected),  # noqa: B023 - awaited before the loop moves on
                    timeout=5,
                    what=f"{host} to answer {expected} after `soko tenants {command[0]}`",
                )


async def test_the_listener_reconnects_and_hears_changes_again(
    make_kernel: KernelFactory, superuser: asyncpg.Connection, soko_servers: Servers
) -> None:
    """Redis drops the listener's connection: it comes back on its own, and changes reach the process again."""
    tenant = await create_tenant(superuser)
    kernel = make_kernel(cache_ttl_seconds=3600)
    app = create_app(kernel)
    redis = Redis.from_url(soko_servers.redis_url)
    try:
        async with app.test_app() as test_app:
            client = test_app.test_client()

            async def status() -> int:
                return (await client.get("/probe/items", headers={"Host": tenant.host})).status_code

            async def listeners() -> set[int]:
                clients = await redis.client_list(_type="pubsub")
                return {int(c["id"]) for c in clients if c["name"] == channel(kernel)}

            before = await listeners()
            assert len(before) == 1
            for connection in before:
                await redis.client_kill_filter(_id=connection)
            await eventually(lambda: _has_new(listeners(), before), timeout=10, what="the listener to connect again")
            assert await status() == 200  # cached again, for an hour
            await superuser.execute("UPDATE tenants SET status = 'suspended' WHERE id = $1", tenant.id)
            assert await status() == 200  # nobody announced the change yet
            await redis.publish(channel(kernel), tenant.id)
            await eventually(lambda: _equals(status(), 403), timeout=5, what="the announced change to arrive")
    finally:
        await redis.aclose()


async def _has_new(found: Awaitable[set[int]], before: set[int]) -> bool:
    return bool(await found - before)


async def _equals(found: Awaitable[int], expected: int) -> bool:
    return await found == expected
