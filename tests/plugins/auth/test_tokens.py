"""Access tokens over the real server: bound to their tenant, refused when tampered, expired or wrongly signed;
verified with every configured key (rotation) and signed with the current one."""

from __future__ import annotations

import base64
import json
import time
import uuid

import asyncpg
import jwt
import pytest

from kernel.testing.project import Project, Running
from tests.plugins.auth.conftest import NEW_KEY, OLD_KEY, Client, Tenant, create_staff, new_phone


def _claims(tenant: Tenant, **changes: object) -> dict[str, object]:
    now = int(time.time())
    claims = {
        "sub": str(uuid.uuid4()),
        "tenant": tenant.id,
        "role": "customer",
        "iat": now,
        "exp": now + 300,
        "jti": uuid.uuid4().hex,
        "typ": "access",
    }
    return claims | changes


def _sign(claims: dict[str, object], key: str = NEW_KEY, kid: str = "new", algorithm: str = "HS256") -> str:
    return jwt.encode(claims, key, algorithm=algorithm, headers={"kid": kid})


async def _status(client: Client, token: str) -> tuple[int, str]:
    response = await client.call("GET", "/auth/me", token=token)
    return response.status_code, response.json().get("code", "")


async def test_token_of_tenant_a_is_refused_on_tenant_b(
    server: Running, tenant: Tenant, other_tenant: Tenant, superuser: asyncpg.Connection
) -> None:
    async with Client(server, tenant) as a, Client(server, other_tenant) as b:
        pair = await a.sign_in(superuser, new_phone())
        assert (await _status(a, pair["access_token"]))[0] == 200
        response = await b.call("GET", "/auth/me", token=pair["access_token"])
        assert response.status_code == 401
        assert response.json()["code"] == "unauthorized"
        assert response.headers["www-authenticate"].startswith("Bearer")
        refreshed = await b.call("POST", "/auth/token/refresh", json={"refresh_token": pair["refresh_token"]})
        assert refreshed.status_code == 401, "a refresh token of tenant A is unknown on tenant B"


async def test_issued_tokens_carry_every_claim_and_the_signing_kid(
    server: Running, tenant: Tenant, superuser: asyncpg.Connection
) -> None:
    async with Client(server, tenant) as client:
        pair = await client.sign_in(superuser, new_phone())
    header = jwt.get_unverified_header(pair["access_token"])
    assert header == {"alg": "HS256", "kid": "new", "typ": "JWT"}
    claims = jwt.decode(pair["access_token"], NEW_KEY, algorithms=["HS256"])
    assert set(claims) == {"sub", "tenant", "role", "iat", "exp", "jti", "typ"}
    assert claims["tenant"] == tenant.id
    assert claims["exp"] - claims["iat"] == 900


async def test_a_token_signed_with_the_previous_key_still_verifies(server: Running, tenant: Tenant) -> None:
    async with Client(server, tenant) as client:
        assert await _status(client, _sign(_claims(tenant), OLD_KEY, "old")) == (200, "")


@pytest.mark.parametrize(
    "case",
    ["expired", "wrong_key", "unknown_kid", "tampered", "alg_none", "other_type", "missing_claim", "garbage"],
)
async def test_bad_tokens_are_refused(
    server: Running, tenant: Tenant, superuser: asyncpg.Connection, case: str
) -> None:
    now = int(time.time())
    tokens = {
        "expired": lambda: _sign(_claims(tenant, iat=now - 2000, exp=now - 60)),
        "wrong_key": lambda: _sign(_claims(tenant), "an-attacker-key-" + "z" * 40),
        "unknown_kid": lambda: _sign(_claims(tenant), NEW_KEY, "gone"),
        "tampered": lambda: _tampered(_sign(_claims(tenant)), role="owner"),
        "alg_none": lambda: jwt.encode(_claims(tenant), None, algorithm="none", headers={"kid": "new"}),
        "other_type": lambda: _sign(_claims(tenant, typ="refresh")),
        "missing_claim": lambda: _sign({k: v for k, v in _claims(tenant).items() if k != "jti"}),
        "garbage": lambda: "not.a.token",
    }
    async with Client(server, tenant) as client:
        assert await _status(client, tokens[case]()) == (401, "unauthorized")


def _tampered(token: str, **changes: object) -> str:
    """The same signature over changed claims (here: a customer promoting itself)."""
    header, payload, signature = token.split(".")
    claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4))) | changes
    forged = base64.urlsafe_b64encode(json.dumps(claims).encode()).rstrip(b"=").decode()
    return f"{header}.{forged}.{signature}"


async def test_a_staff_token_opens_admin_routes_of_its_own_tenant_only(
    project: Project, server: Running, tenant: Tenant, other_tenant: Tenant
) -> None:
    owner = create_staff(project, tenant, f"owner-{uuid.uuid4().hex[:8]}@shop.example", "owner")
    staff_token = _sign(_claims(tenant, sub=owner, role="owner"))
    async with Client(server, tenant) as client, Client(server, other_tenant) as elsewhere:
        assert (await client.call("GET", "/admin/auth/staff", token=staff_token)).status_code == 200
        refused = await elsewhere.call("GET", "/admin/auth/staff", token=staff_token)
        assert (refused.status_code, refused.json()["code"]) == (401, "unauthorized")
