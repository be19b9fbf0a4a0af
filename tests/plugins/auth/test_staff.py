"""Staff sign-in over the real server: users made with `soko users create`, cookie sessions checked by the
security plugin's CSRF rule, admin routes for staff of the same tenant only, and logout ending the session."""

from __future__ import annotations

import uuid

import asyncpg

from kernel.testing.project import Project, Running
from tests.plugins.auth.conftest import (
    PASSWORD,
    Client,
    Tenant,
    cookie_value,
    create_staff,
    new_phone,
    set_cookies,
    users_create,
)

ADMIN = "/admin/auth/staff"


def _email() -> str:
    return f"staff-{uuid.uuid4().hex[:8]}@shop.example"


async def _login(client: Client, email: str, password: str = PASSWORD) -> dict[str, str]:
    response = await client.call("POST", "/auth/login", json={"email": email, "password": password})
    assert response.status_code == 200, response.text
    return {name: cookie_value(header) for name, header in set_cookies(response).items()}


async def test_login_sets_session_and_csrf_cookies(project: Project, server: Running, tenant: Tenant) -> None:
    email = _email()
    user_id = create_staff(project, tenant, email, "owner")
    async with Client(server, tenant) as client:
        response = await client.call("POST", "/auth/login", json={"email": email.upper(), "password": PASSWORD})
    assert response.status_code == 200
    assert response.json() == {"user_id": user_id, "tenant_id": tenant.id, "role": "owner"}
    cookies = set_cookies(response)
    session, csrf = cookies["soko_session"].lower(), cookies["soko_csrf"].lower()
    assert "httponly" in session
    assert "httponly" not in csrf, "the panel's script reads the CSRF cookie to repeat it in X-CSRF-Token"
    for header in (session, csrf):
        assert "samesite=lax" in header
        assert "path=/" in header
        assert "secure" not in header, "plain HTTP in the test environment"


async def test_wrong_password_and_unknown_email_get_the_same_answer(
    project: Project, server: Running, tenant: Tenant
) -> None:
    email = _email()
    create_staff(project, tenant, email, "staff")
    async with Client(server, tenant) as client:
        wrong = await client.call("POST", "/auth/login", json={"email": email, "password": "not the password"})
        unknown = await client.call("POST", "/auth/login", json={"email": _email(), "password": PASSWORD})
    for response in (wrong, unknown):
        assert response.status_code == 401
        assert "set-cookie" not in response.headers
    assert {k: v for k, v in wrong.json().items() if k != "request_id"} == {
        k: v for k, v in unknown.json().items() if k != "request_id"
    }


async def test_admin_route_needs_staff_of_the_same_tenant(
    project: Project, server: Running, tenant: Tenant, other_tenant: Tenant, superuser: asyncpg.Connection
) -> None:
    owner, member = _email(), _email()
    create_staff(project, tenant, owner, "owner")
    create_staff(project, tenant, member, "staff")
    async with Client(server, tenant) as client, Client(server, other_tenant) as elsewhere:
        nobody = await client.call("GET", ADMIN)
        assert (nobody.status_code, nobody.json()["code"]) == (401, "unauthorized")

        customer = await client.sign_in(superuser, new_phone())
        as_customer = await client.call("GET", ADMIN, token=customer["access_token"])
        assert (as_customer.status_code, as_customer.json()["code"]) == (403, "forbidden")

        cookies = await _login(client, owner)
        listed = await client.call("GET", ADMIN, cookies=cookies)
        assert listed.status_code == 200
        assert {row["email"]: row["role"] for row in listed.json()["staff"]} == {owner: "owner", member: "staff"}

        as_member = await client.call("GET", ADMIN, cookies=await _login(client, member))
        assert (as_member.status_code, as_member.json()["code"]) == (403, "forbidden"), "owners only"

        on_other_host = await elsewhere.call("GET", ADMIN, cookies=cookies)
        assert on_other_host.status_code == 401, "a session of tenant A signs nobody in on tenant B"


async def test_logout_ends_the_session_server_side(project: Project, server: Running, tenant: Tenant) -> None:
    email = _email()
    create_staff(project, tenant, email, "owner")
    async with Client(server, tenant) as client:
        cookies = await _login(client, email)
        assert (await client.call("GET", "/auth/me", cookies=cookies)).json()["role"] == "owner"

        no_csrf = await client.call("POST", "/auth/logout", cookies=cookies, json={})
        assert (no_csrf.status_code, no_csrf.json()["code"]) == (403, "csrf_failed"), "security checks the cookie pair"

        logout = await client.call(
            "POST", "/auth/logout", cookies=cookies, headers={"X-CSRF-Token": cookies["soko_csrf"]}, json={}
        )
        assert logout.status_code == 204
        cleared = set_cookies(logout)
        assert {"soko_session", "soko_csrf"} <= set(cleared)
        assert all(
            "max-age=0" in header.lower() or "expires=thu, 01 jan 1970" in header.lower() for header in cleared.values()
        )

        for path in ("/auth/me", ADMIN):
            replayed = await client.call("GET", path, cookies=cookies)
            assert (replayed.status_code, replayed.json()["code"]) == (401, "unauthorized")


async def test_users_create_refuses_a_duplicate_and_stores_an_argon2id_hash(
    project: Project, tenant: Tenant, superuser: asyncpg.Connection
) -> None:
    email = _email()
    create_staff(project, tenant, email, "staff")
    stored = await superuser.fetchval(
        "SELECT password_hash FROM auth_staff WHERE tenant_id = $1::uuid AND email = $2", tenant.id, email
    )
    assert stored.startswith("$argon2id$")
    assert PASSWORD not in stored
    duplicate = users_create(project, tenant, email.upper(), "owner")
    assert (duplicate.returncode, duplicate.stderr.strip()) == (
        1,
        f"Error: user_exists: {tenant.slug} already has a user {email.upper()}",
    )
    short = users_create(project, tenant, _email(), "staff", password="short")
    assert (short.returncode, "at least 12 characters" in short.stderr) == (1, True)
