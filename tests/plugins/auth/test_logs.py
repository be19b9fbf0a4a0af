"""The server's own log of a whole sign-in story holds no code, password, token or full phone number, and neither
does any error response; the access log names the signed-in user."""

from __future__ import annotations

import re
import uuid

import asyncpg
import httpx

from kernel.testing.project import Project, wait_for
from tests.plugins.auth.conftest import (
    PASSWORD,
    Client,
    Tenant,
    cookie_value,
    create_staff,
    latest_code,
    new_phone,
    set_cookies,
)


async def test_no_secret_or_full_phone_in_any_log_line_or_error_response(
    project: Project, tenant: Tenant, other_tenant: Tenant, superuser: asyncpg.Connection
) -> None:
    email = f"owner-{uuid.uuid4().hex[:8]}@shop.example"
    create_staff(project, tenant, email, "owner")
    phone = new_phone()
    secrets: list[str] = [PASSWORD, phone, phone.removeprefix("+"), "0" + phone.removeprefix("+254")]
    errors: list[httpx.Response] = []

    with project.serve() as server:
        async with Client(server, tenant) as client, Client(server, other_tenant) as elsewhere:
            await client.call("POST", "/auth/otp/request", json={"phone": "0" + phone.removeprefix("+254")})
            code = await latest_code(superuser, tenant, phone)
            wrong = f"{(int(code) + 1) % 10**6:06d}"
            errors.append(await client.call("POST", "/auth/otp/verify", json={"phone": phone, "code": wrong}))
            pair = (await client.call("POST", "/auth/otp/verify", json={"phone": phone, "code": code})).json()
            secrets += [code, wrong, pair["access_token"], pair["refresh_token"]]
            me = (await client.call("GET", "/auth/me", token=pair["access_token"])).json()
            errors.append(await elsewhere.call("GET", "/auth/me", token=pair["access_token"]))
            errors.append(await client.call("GET", "/auth/me", token=pair["access_token"] + "x"))
            rotated = (
                await client.call("POST", "/auth/token/refresh", json={"refresh_token": pair["refresh_token"]})
            ).json()
            secrets += [rotated["access_token"], rotated["refresh_token"]]
            errors.append(
                await client.call("POST", "/auth/token/refresh", json={"refresh_token": pair["refresh_token"]})
            )
            errors.append(await client.call("POST", "/auth/otp/request", json={"phone": phone + "999"}))
            errors.append(await client.call("POST", "/auth/login", json={"email": email, "password": PASSWORD + "!"}))
            errors.append(await client.call("GET", "/admin/auth/staff", token=pair["access_token"]))
            secrets.append(PASSWORD + "!")
            login = await client.call("POST", "/auth/login", json={"email": email, "password": PASSWORD})
            cookies = {name: cookie_value(header) for name, header in set_cookies(login).items()}
            secrets += list(cookies.values())
            csrf = {"X-CSRF-Token": cookies["soko_csrf"]}
            assert (
                await client.call("POST", "/auth/logout", cookies=cookies, headers=csrf, json={})
            ).status_code == 204
            errors.append(await client.call("GET", "/auth/me", cookies=cookies))
        wait_for(lambda: server.log().count('"soko.access"') >= 13, timeout=10, what="every access line")
        log = server.log()

    assert all(response.status_code >= 400 for response in errors)
    lines = log.splitlines()
    for secret in secrets:
        leaks = [line for line in lines if secret in line]
        assert not leaks, f"a secret of length {len(secret)} is in the log: {leaks[0][:300]}"
        for response in errors:
            assert secret not in response.text, f"{response.request.url.path} answered with a secret"
    full_phones = re.compile(r"\+?2547\d{8}")
    assert not [line for line in lines if full_phones.search(line)]
    access = [record for record in server.log_records() if record.get("logger") == "soko.access"]
    me_lines = [record for record in access if record["route"] == "/auth/me" and record["status"] == 200]
    assert me_lines and all(record["user_id"] == me["user_id"] for record in me_lines)
    assert all("user_id" not in record for record in access if record["status"] == 401)
