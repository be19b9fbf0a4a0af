"""The platform operator's admin API, in process against the real database and Redis."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from quart.typing import TestClientProtocol as Client

from kernel.app import create_app
from tests.plugins.tenancy.conftest import ADMIN_TOKEN, KernelFactory

AUTH = {"Authorization": f"Bearer {ADMIN_TOKEN}"}


def fresh_slug() -> str:
    return f"shop-{uuid.uuid4().hex[:10]}"


async def call(client: Client, method: str, path: str, json: Any = None, **headers: str) -> tuple[int, Any]:
    response = await client.open(path, method=method, json=json, headers=AUTH | headers)
    return response.status_code, await response.get_json()


@pytest.mark.parametrize(
    "authorization",
    [None, "Bearer wrong-token", f"Basic {ADMIN_TOKEN}", f"Bearer {ADMIN_TOKEN}x", f"bearer{ADMIN_TOKEN}"],
)
async def test_every_call_needs_the_platform_token(client: Client, authorization: str | None) -> None:
    headers = {} if authorization is None else {"Authorization": authorization}
    for method, path in [("GET", "/tenancy/tenants"), ("POST", "/tenancy/tenants"), ("PATCH", "/tenancy/tenants/x")]:
        response = await client.open(path, method=method, json={}, headers=headers)
        assert response.status_code == 401
        assert (await response.get_json())["code"] == "unauthorized"
        assert response.headers["WWW-Authenticate"] == 'Bearer realm="soko-platform"'


async def test_without_a_token_setting_there_is_no_admin_api(
    make_kernel: KernelFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("SOKO_PLUGINS__TENANCY__ADMIN_TOKEN")
    app = create_app(make_kernel())
    async with app.test_app() as test_app:
        response = await test_app.test_client().get("/tenancy/tenants", headers=AUTH)
    assert response.status_code == 404
    assert (await response.get_json())["code"] == "not_found"


async def test_lifecycle_of_a_tenant(client: Client) -> None:
    slug = fresh_slug()
    domain = f"{slug}.example"
    status, created = await call(
        client, "POST", "/tenancy/tenants", {"slug": f"  {slug.upper()} ", "name": " Duka\x00 ", "domains": [domain]}
    )
    assert status == 201, created
    assert created["slug"] == slug  # slugified
    assert created["name"] == "Duka"  # trimmed, control characters gone
    assert created["domains"] == [domain]
    assert created["status"] == "active"
    tenant_id = created["id"]
    assert uuid.UUID(tenant_id)

    assert await call(client, "GET", f"/tenancy/tenants/{tenant_id}") == (200, created)
    assert await call(client, "GET", f"/tenancy/tenants/{slug}") == (200, created)
    status, listing = await call(client, "GET", "/tenancy/tenants")
    assert created in listing["tenants"]

    status, renamed = await call(client, "PATCH", f"/tenancy/tenants/{slug}", {"name": "Duka Kubwa"})
    assert (status, renamed["name"]) == (200, "Duka Kubwa")
    status, suspended = await call(client, "PATCH", f"/tenancy/tenants/{tenant_id}", {"status": "suspended"})
    assert (status, suspended["status"]) == (200, "suspended")

    status, with_two = await call(client, "POST", f"/tenancy/tenants/{slug}/domains", {"domain": f"WWW.{domain}."})
    assert (status, with_two["domains"]) == (201, [domain, f"www.{domain}"])
    status, with_one = await call(client, "DELETE", f"/tenancy/tenants/{slug}/domains/{domain}")
    assert (status, with_one["domains"]) == (200, [f"www.{domain}"])


async def test_refusals_have_stable_codes(client: Client) -> None:
    slug, unborn = fresh_slug(), fresh_slug()
    domain = f"{slug}.example"
    assert (await call(client, "POST", "/tenancy/tenants", {"slug": slug, "name": "A", "domains": [domain]}))[0] == 201
    refusals: list[tuple[str, str, Any, int, str]] = [
        ("POST", "/tenancy/tenants", {"slug": slug, "name": "Again"}, 409, "slug_taken"),
        ("POST", "/tenancy/tenants", {"slug": unborn, "name": "B", "domains": [domain]}, 409, "domain_taken"),
        ("POST", "/tenancy/tenants", {"slug": "www", "name": "Platform"}, 400, "validation_error"),
        ("POST", "/tenancy/tenants", {"slug": fresh_slug(), "name": "C", "owner": "x"}, 400, "validation_error"),
        ("POST", "/tenancy/tenants", {"slug": "---", "name": "D"}, 400, "validation_error"),
        ("POST", "/tenancy/tenants", {"slug": fresh_slug(), "name": ""}, 400, "validation_error"),
        (
            "POST",
            "/tenancy/tenants",
            {"slug": fresh_slug(), "name": "E", "domains": ["x.localhost"]},
            400,
            "validation_error",
        ),
        (
            "POST",
            "/tenancy/tenants",
            {"slug": fresh_slug(), "name": "F", "domains": ["not a domain"]},
            400,
            "validation_error",
        ),
        ("PATCH", f"/tenancy/tenants/{slug}", {"status": "deleted"}, 400, "validation_error"),
        ("PATCH", "/tenancy/tenants/no-such-tenant", {"name": "G"}, 404, "not_found"),
        ("GET", f"/tenancy/tenants/{uuid.uuid4()}", None, 404, "not_found"),
        ("DELETE", f"/tenancy/tenants/{slug}/domains/other.example", None, 404, "not_found"),
    ]
    for method, path, body, status, code in refusals:
        found_status, found = await call(client, method, path, body)
        assert (method, path, body, found_status, found["code"]) == (method, path, body, status, code)
    assert (await call(client, "GET", f"/tenancy/tenants/{unborn}"))[0] == 404  # its taken domain undid it all


async def test_a_change_is_seen_at_once_by_the_process_that_made_it(client: Client) -> None:
    """The negative answer cached for the unknown host is dropped when the tenant appears, and so on."""
    slug = fresh_slug()
    host = {"Host": f"{slug}.localhost"}
    assert (await client.get("/probe/items", headers=host)).status_code == 404
    assert (await call(client, "POST", "/tenancy/tenants", {"slug": slug, "name": "New"}))[0] == 201
    assert (await client.get("/probe/items", headers=host)).status_code == 200
    await call(client, "PATCH", f"/tenancy/tenants/{slug}", {"status": "suspended"})
    assert (await client.get("/probe/items", headers=host)).status_code == 403
    await call(client, "POST", f"/tenancy/tenants/{slug}/domains", {"domain": f"{slug}.example"})
    await call(client, "PATCH", f"/tenancy/tenants/{slug}", {"status": "active"})
    assert (await client.get("/probe/items", headers={"Host": f"{slug}.example"})).status_code == 200
    await call(client, "DELETE", f"/tenancy/tenants/{slug}/domains/{slug}.example")
    assert (await client.get("/probe/items", headers={"Host": f"{slug}.example"})).status_code == 404
