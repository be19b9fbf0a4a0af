"""Which tenant a request is for, in process against the real database: precedence, refusals, logs, cost."""

from __future__ import annotations

import asyncio
import logging
import uuid
from typing import Any

import asyncpg
import pytest
from quart.typing import TestClientProtocol as Client

from kernel.app import create_app
from tests.plugins.tenancy.conftest import KernelFactory, create_tenant


async def outcome(client: Client, host: str, path: str = "/probe/items", tenant: str | None = None) -> str:
    """The tenant a request was served for, or the problem code it was refused with."""
    headers = {"Host": host} | ({"X-Tenant-ID": tenant} if tenant is not None else {})
    response = await client.get(path, headers=headers)
    body = await response.get_json()
    if response.status_code == 200:
        return body.get("tenant", "served")
    assert response.content_type == "application/problem+json"
    return f"{response.status_code} {body['code']}"


async def test_precedence_of_host_header_and_routes(client: Client, superuser: asyncpg.Connection) -> None:
    domain = f"shop-{uuid.uuid4().hex[:8]}.example"
    a = await create_tenant(superuser, domains=[domain])
    b = await create_tenant(superuser)
    suspended = await create_tenant(superuser, status="suspended")
    unknown_id = str(uuid.uuid4())
    cases: list[tuple[dict[str, Any], str]] = [
        # The host decides: a slug under a base domain (any case, port or trailing dot), or a custom domain.
        ({"host": a.host}, a.id),
        ({"host": f"{a.slug.upper()}.LocalHost:8000"}, a.id),
        ({"host": f"{a.host}."}, a.id),
        ({"host": domain}, a.id),
        ({"host": b.host}, b.id),
        # Hosts naming no tenant, or one that does not exist: 404.
        ({"host": "localhost"}, "404 tenant_not_found"),
        ({"host": "127.0.0.1:8000"}, "404 tenant_not_found"),
        ({"host": "www.localhost"}, "404 tenant_not_found"),
        ({"host": f"deeper.{a.host}"}, "404 tenant_not_found"),
        ({"host": "nosuchstore.localhost"}, "404 tenant_not_found"),
        ({"host": "nosuchstore.example"}, "404 tenant_not_found"),
        # A request that routes nowhere needs no tenant: the kernel's 404 or 405, tenant or not.
        ({"host": "nosuchstore.localhost", "path": "/no/such/route"}, "404 not_found"),
        ({"host": suspended.host}, "403 tenant_suspended"),
        # The header names a tenant only where the host names none, and only on the header routes.
        ({"host": "localhost", "tenant": a.id}, a.id),
        ({"host": "api.localhost", "tenant": a.id.upper()}, a.id),
        ({"host": "localhost", "tenant": a.id, "path": "/probe/whoami"}, "404 tenant_not_found"),
        ({"host": a.host, "path": "/probe/whoami"}, a.id),
        ({"host": "localhost", "tenant": unknown_id}, "404 tenant_not_found"),
        ({"host": "localhost", "tenant": "not-a-uuid"}, "404 tenant_not_found"),
        ({"host": "localhost", "tenant": suspended.id}, "403 tenant_suspended"),
        ({"host": "nosuchstore.localhost", "tenant": a.id}, "404 tenant_not_found"),
        # A header agreeing with the host is fine; one naming another tenant never moves the request.
        ({"host": a.host, "tenant": a.id}, a.id),
        ({"host": a.host, "tenant": b.id}, "400 tenant_mismatch"),
        ({"host": a.host, "tenant": "garbage"}, "400 tenant_mismatch"),
        ({"host": a.host, "tenant": b.id, "path": "/elsewhere"}, "404 not_found"),  # header ignored, route unknown
        # Exempt routes need no tenant and get none.
        ({"host": "nosuchstore.localhost", "path": "/healthz"}, "served"),
        ({"host": "nosuchstore.localhost", "path": "/probe/pool"}, "served"),
    ]
    found = [(case, await outcome(client, **case)) for case, _ in cases]
    assert found == cases


async def test_not_found_reveals_nothing_and_logs_what_was_asked(
    client: Client, superuser: asyncpg.Connection, caplog: pytest.LogCaptureFixture
) -> None:
    suspended = await create_tenant(superuser, status="suspended")
    caplog.set_level(logging.INFO, logger="soko.tenancy")
    bodies = []
    for host, tenant in [
        ("nosuchstore.localhost", None),
        ("localhost", str(uuid.uuid4())),
        ("localhost", suspended.id[:-1]),  # one character short of a real tenant's id
        ("\x07ring" + "x" * 500 + ".localhost", "\x1b\tinjected: yes"),
    ]:
        response = await client.get("/probe/items", headers={"Host": host, "X-Tenant-ID": tenant or ""})
        assert response.status_code == 404
        body = await response.get_json()
        assert body.pop("request_id")
        bodies.append(body)
    assert all(body == bodies[0] for body in bodies)
    assert bodies[0] == {
        "type": "about:blank",
        "title": "Not Found",
        "status": 404,
        "code": "tenant_not_found",
        "detail": "No store is served at this address.",
    }
    records = [record for record in caplog.records if record.getMessage() == "tenant not found"]
    assert records[0].host == "nosuchstore.localhost"
    hostile = records[-1]
    assert hostile.host.startswith("?ringxxx") and hostile.host.endswith("...") and len(hostile.host) == 123
    assert hostile.tenant_header == "??injected: yes"


async def test_a_known_tenant_costs_one_query_for_100_requests(
    make_kernel: KernelFactory, superuser: asyncpg.Connection
) -> None:
    """Counted by asyncpg on every pooled connection: 100 concurrent requests from a cold cache, then 100 more."""
    tenant = await create_tenant(superuser, items=1)
    kernel = make_kernel()
    queries: list[str] = []

    async def count_queries(connection: asyncpg.Connection) -> None:
        connection.add_query_logger(lambda logged: queries.append(logged.query))

    assert kernel.engine is not None
    kernel.engine.config["init"] = count_queries
    app = create_app(kernel)
    async with app.test_app() as test_app:
        client = test_app.test_client()
        for _ in range(2):
            responses = await asyncio.gather(
                *(client.get("/probe/items", headers={"Host": tenant.host}) for _ in range(100))
            )
            assert {response.status_code for response in responses} == {200}

    assert sum("tenantprobe_items" in query for query in queries) == 200  # the counter sees every view's query
    resolution = [query for query in queries if '"tenants"' in query]
    assert len(resolution) == 1, resolution
