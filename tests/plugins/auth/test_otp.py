"""Customer sign-in by code against a real server: the code comes from the outbox table, as the channel left it."""

from __future__ import annotations

import asyncio

import asyncpg
import pytest

from kernel.testing.project import Running
from tests.plugins.auth.conftest import Client, Tenant, latest_code, new_phone


async def test_whole_flow_code_from_outbox_token_me_refresh(
    server: Running, tenant: Tenant, superuser: asyncpg.Connection
) -> None:
    phone = new_phone()
    async with Client(server, tenant) as client:
        local = "0" + phone.removeprefix("+254")
        spaced = f"{local[:4]} {local[4:7]} {local[7:]}"
        response = await client.call("POST", "/auth/otp/request", json={"phone": spaced})
        assert response.status_code == 202
        assert response.json() == {"status": "sent", "expires_in": 300}
        code = await latest_code(superuser, tenant, phone)  # stored under the E.164 form
        stored = await superuser.fetchrow(
            "SELECT code_hash, attempts FROM auth_otp_codes WHERE tenant_id = $1::uuid AND phone = $2", tenant.id, phone
        )
        assert code not in stored["code_hash"]
        assert len(stored["code_hash"]) == 64

        pair = (await client.call("POST", "/auth/otp/verify", json={"phone": phone, "code": code})).json()
        assert pair["token_type"] == "Bearer"
        assert pair["expires_in"] == 900
        me = await client.call("GET", "/auth/me", token=pair["access_token"])
        assert me.status_code == 200
        assert me.json()["role"] == "customer"
        assert me.json()["tenant_id"] == tenant.id
        customer = await superuser.fetchval(
            "SELECT id::text FROM auth_customers WHERE tenant_id = $1::uuid AND phone = $2", tenant.id, phone
        )
        assert me.json()["user_id"] == customer

        again = await client.call("POST", "/auth/otp/verify", json={"phone": phone, "code": code})
        assert again.status_code == 401, "a code works once"
        assert again.json()["code"] == "unauthorized"


async def test_five_wrong_codes_lock_the_code(server: Running, tenant: Tenant, superuser: asyncpg.Connection) -> None:
    phone = new_phone()
    async with Client(server, tenant) as client:
        await client.call("POST", "/auth/otp/request", json={"phone": phone})
        code = await latest_code(superuser, tenant, phone)
        wrong = f"{(int(code) + 1) % 10**6:06d}"
        for _ in range(5):
            response = await client.call("POST", "/auth/otp/verify", json={"phone": phone, "code": wrong})
            assert response.status_code == 401
        attempts = await superuser.fetchval(
            "SELECT attempts FROM auth_otp_codes WHERE tenant_id = $1::uuid AND phone = $2", tenant.id, phone
        )
        assert attempts == 5
        locked = await client.call("POST", "/auth/otp/verify", json={"phone": phone, "code": code})
        assert locked.status_code == 401, "the right code is refused once the code is locked"
        assert locked.json()["code"] == "unauthorized"

        await client.call("POST", "/auth/otp/request", json={"phone": phone})  # a new code starts afresh
        fresh = await latest_code(superuser, tenant, phone)
        assert (await client.call("POST", "/auth/otp/verify", json={"phone": phone, "code": fresh})).status_code == 200


async def test_expired_code_is_refused(server: Running, tenant: Tenant, superuser: asyncpg.Connection) -> None:
    phone = new_phone()
    async with Client(server, tenant) as client:
        await client.call("POST", "/auth/otp/request", json={"phone": phone})
        code = await latest_code(superuser, tenant, phone)
        await superuser.execute(
            "UPDATE auth_otp_codes SET expires_at = now() - interval '1 second' "
            "WHERE tenant_id = $1::uuid AND phone = $2",
            tenant.id,
            phone,
        )
        response = await client.call("POST", "/auth/otp/verify", json={"phone": phone, "code": code})
        assert response.status_code == 401
        assert response.json()["code"] == "unauthorized"


async def test_refresh_token_works_once_then_its_family_is_revoked(
    server: Running, tenant: Tenant, superuser: asyncpg.Connection
) -> None:
    async with Client(server, tenant) as client:
        first = await client.sign_in(superuser, new_phone())
        rotated = await client.call("POST", "/auth/token/refresh", json={"refresh_token": first["refresh_token"]})
        assert rotated.status_code == 200
        second = rotated.json()
        assert second["refresh_token"] != first["refresh_token"]
        assert (await client.call("GET", "/auth/me", token=second["access_token"])).status_code == 200

        reused = await client.call("POST", "/auth/token/refresh", json={"refresh_token": first["refresh_token"]})
        assert reused.status_code == 401
        assert reused.json()["code"] == "unauthorized"
        successor = await client.call("POST", "/auth/token/refresh", json={"refresh_token": second["refresh_token"]})
        assert successor.status_code == 401, "reuse of an old token revokes the whole family"


async def test_logout_revokes_the_refresh_token(server: Running, tenant: Tenant, superuser: asyncpg.Connection) -> None:
    async with Client(server, tenant) as client:
        pair = await client.sign_in(superuser, new_phone())
        logout = await client.call(
            "POST", "/auth/logout", token=pair["access_token"], json={"refresh_token": pair["refresh_token"]}
        )
        assert logout.status_code == 204
        refused = await client.call("POST", "/auth/token/refresh", json={"refresh_token": pair["refresh_token"]})
        assert refused.status_code == 401


async def test_unknown_number_gets_the_same_answer_as_a_known_one(
    server: Running, tenant: Tenant, superuser: asyncpg.Connection
) -> None:
    known = new_phone()
    async with Client(server, tenant) as client:
        await client.sign_in(superuser, known)
        answers = [
            await client.call("POST", "/auth/otp/request", json={"phone": phone}) for phone in (known, new_phone())
        ]
    assert answers[0].status_code == answers[1].status_code == 202
    assert answers[0].content == answers[1].content
    assert set(answers[0].headers) == set(answers[1].headers)


@pytest.mark.parametrize("phone", ["12345", "+254202222222", "not a number", "+2547123456789012"])
async def test_a_number_that_is_not_a_valid_mobile_is_a_validation_error(
    server: Running, tenant: Tenant, phone: str
) -> None:
    async with Client(server, tenant) as client:
        response = await client.call("POST", "/auth/otp/request", json={"phone": phone})
    assert response.status_code == 400
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["code"] == "validation_error"


async def test_concurrent_guesses_count_every_attempt_and_a_code_signs_in_once(
    server: Running, tenant: Tenant, superuser: asyncpg.Connection
) -> None:
    phone = new_phone()
    async with Client(server, tenant) as client:
        await client.call("POST", "/auth/otp/request", json={"phone": phone})
        code = await latest_code(superuser, tenant, phone)
        guesses = [f"{(int(code) + n) % 10**6:06d}" for n in range(1, 13)]
        answers = await asyncio.gather(
            *(client.call("POST", "/auth/otp/verify", json={"phone": phone, "code": guess}) for guess in guesses)
        )
        assert {response.status_code for response in answers} == {401}
        attempts = await superuser.fetchval(
            "SELECT attempts FROM auth_otp_codes WHERE tenant_id = $1::uuid AND phone = $2", tenant.id, phone
        )
        assert attempts == 5, "the row lock serialises guesses: the limit holds under concurrency"

        await client.call("POST", "/auth/otp/request", json={"phone": phone})
        fresh = await latest_code(superuser, tenant, phone)
        same_code = await asyncio.gather(
            *(client.call("POST", "/auth/otp/verify", json={"phone": phone, "code": fresh}) for _ in range(6))
        )
        assert sorted(response.status_code for response in same_code) == [200, 401, 401, 401, 401, 401]


async def test_concurrent_refreshes_with_one_token_succeed_once(
    server: Running, tenant: Tenant, superuser: asyncpg.Connection
) -> None:
    async with Client(server, tenant) as client:
        pair = await client.sign_in(superuser, new_phone())
        answers = await asyncio.gather(
            *(
                client.call("POST", "/auth/token/refresh", json={"refresh_token": pair["refresh_token"]})
                for _ in range(6)
            )
        )
    assert sorted(response.status_code for response in answers) == [200, 401, 401, 401, 401, 401]
