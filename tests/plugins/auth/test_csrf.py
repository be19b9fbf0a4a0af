"""Cookie tossing, for real: a page on another store's subdomain of the same base domain sets a parent-domain
`soko_csrf` cookie (with a longer Path, so browsers send it first) and a matching `X-CSRF-Token`, from its own
origin, to sign this store's staff member out. Before, that was a 204 and the other store's preflight was
admitted; now the token is bound to the session, the origin must be the store's own, and the preflight is refused.
The real panel flow still works."""

from __future__ import annotations

import uuid

from kernel.testing.project import Project, Running
from tests.plugins.auth.conftest import PASSWORD, Client, Tenant, cookie_value, create_staff, set_cookies


async def _signed_in(project: Project, client: Client) -> tuple[str, str]:
    email = f"staff-{uuid.uuid4().hex[:8]}@shop.example"
    create_staff(project, client.tenant, email, "staff")
    response = await client.call("POST", "/auth/login", json={"email": email, "password": PASSWORD})
    assert response.status_code == 200, response.text
    cookies = {name: cookie_value(header) for name, header in set_cookies(response).items()}
    return cookies["soko_session"], cookies["soko_csrf"]


async def _still_signed_in(client: Client, session: str) -> bool:
    return (await client.call("GET", "/auth/me", cookies={"soko_session": session})).status_code == 200


async def test_a_tossed_csrf_cookie_from_another_store_is_refused(
    project: Project, server: Running, tenant: Tenant, other_tenant: Tenant
) -> None:
    async with Client(server, tenant) as victim:
        session, _ = await _signed_in(project, victim)
        tossed = "tossed-by-the-other-store"
        attacks = {
            "from the other store's origin": f"http://{other_tenant.host}",
            "with no Origin (the token alone must hold)": None,
            "claiming this store's own origin": f"http://{tenant.host}",
        }
        for name, origin in attacks.items():
            headers = {"Cookie": f"soko_csrf={tossed}; soko_session={session}", "X-CSRF-Token": tossed}
            if origin is not None:
                headers["Origin"] = origin
            response = await victim.call("POST", "/auth/logout", headers=headers, json={})
            assert (response.status_code, response.json()["code"]) == (403, "csrf_failed"), name
            assert await _still_signed_in(victim, session), name

        preflight = await victim.call(
            "OPTIONS",
            "/auth/logout",
            headers={
                "Origin": f"http://{other_tenant.host}",
                "Access-Control-Request-Method": "POST",
                "Access-Control-Request-Headers": "x-csrf-token, content-type",
            },
        )
        assert preflight.status_code == 403
        assert "Access-Control-Allow-Origin" not in preflight.headers


async def test_the_panel_flow_still_works(project: Project, server: Running, tenant: Tenant) -> None:
    async with Client(server, tenant) as panel:
        session, token = await _signed_in(project, panel)
        preflight = await panel.call(
            "OPTIONS",
            "/auth/logout",
            headers={"Origin": f"http://{tenant.host}", "Access-Control-Request-Method": "POST"},
        )
        assert preflight.status_code == 204
        # The browser sends both cookies back; the panel's script repeats the CSRF cookie in the header.
        headers = {
            "Cookie": f"soko_session={session}; soko_csrf={token}",
            "X-CSRF-Token": token,
            "Origin": f"http://{tenant.host}",
        }
        response = await panel.call("POST", "/auth/logout", headers=headers, json={})
        assert response.status_code == 204, response.text
        assert not await _still_signed_in(panel, session)
