"""An order holds its customer's full phone number, so only its readers see it (issue 13, item 8): the customer
who placed it (the checkout's token, or the customer signed in when checking out) and staff of the store. Everyone
else, a guessing stranger, another customer, another store's staff, the token of another order, gets the 404 a
missing order gets. Against a real `soko serve`, two stores, real sign-ins.
"""

from __future__ import annotations

import secrets
import uuid

import asyncpg
import httpx

from kernel.testing.project import Project, eventually
from tests.plugins.commerce.conftest import Store, StoreFactory

PHONE = "+254712345678"


async def customer_token(http: httpx.AsyncClient, store: Store, superuser: asyncpg.Connection) -> str:
    """Sign a new customer in by one-time code (read from the outbox, where codes go in tests): an access token."""
    phone = f"+25471{secrets.randbelow(10**7):07d}"
    assert (await http.post("/auth/otp/request", headers=store.host, json={"phone": phone})).status_code == 202

    async def code() -> str | None:
        body = await superuser.fetchval(
            "SELECT body FROM outbox_messages WHERE tenant_id = $1::uuid AND recipient = $2",
            store.tenant_id,
            phone,
        )
        return body and next(word for word in body.replace(".", " ").split() if word.isdigit() and len(word) == 6)

    found = await eventually(code, timeout=10, what="the sign-in code in the outbox")
    verified = await http.post("/auth/otp/verify", headers=store.host, json={"phone": phone, "code": found})
    assert verified.status_code == 200, verified.text
    token: str = verified.json()["access_token"]
    return token


async def test_an_order_is_read_by_its_customer_and_the_stores_staff_only(
    shop: Project, new_store: StoreFactory, superuser: asyncpg.Connection
) -> None:
    with shop.serve() as server:
        async with httpx.AsyncClient(base_url=server.base_url, timeout=30) as http:
            store, other = await new_store(http), await new_store(http)
            await store.add_product("kitenge", on_hand=10)
            placed = await store.checkout(await store.cart_with(("kitenge", 1)), key=str(uuid.uuid4()), phone=PHONE)
            assert placed.status_code == 201, placed.text
            order = placed.json()
            token = order.pop("access_token")
            second = (await store.checkout(await store.cart_with(("kitenge", 1)), key=str(uuid.uuid4()))).json()
            path = f"/orders/{order['id']}"

            async def read(headers: dict[str, str], on: Store = store) -> httpx.Response:
                return await http.get(path, headers=on.host | headers)

            with_token = await read({"X-Order-Token": token})
            as_staff = await read(store.staff)
            refused = {
                "anonymous": await read({}),
                "a wrong token": await read({"X-Order-Token": secrets.token_urlsafe(32)}),
                "an empty token": await read({"X-Order-Token": ""}),
                "another order's token": await read({"X-Order-Token": second["access_token"]}),
                "another store's staff": await read(other.staff),
                "the token on another store": await read({"X-Order-Token": token}, on=other),
                "another store's staff there": await read(other.staff, on=other),
                "a signed-in stranger": await read(
                    {"Authorization": f"Bearer {await customer_token(http, store, superuser)}"}
                ),
            }
            # A customer signed in when checking out reads the order with their sign-in alone.
            bearer = {"Authorization": f"Bearer {await customer_token(http, store, superuser)}"}
            cart = await store.cart_with(("kitenge", 2))
            mine = await http.post(
                "/checkout",
                headers=store.host | bearer | {"Idempotency-Key": str(uuid.uuid4())},
                json={"cart_id": cart, "customer_phone": PHONE},
            )
            assert mine.status_code == 201, mine.text
            signed_in = await http.get(f"/orders/{mine.json()['id']}", headers=store.host | bearer)
            stranger = await http.get(f"/orders/{mine.json()['id']}", headers=store.host)
    assert (with_token.status_code, with_token.json()) == (200, order)
    assert (as_staff.status_code, as_staff.json()) == (200, order)
    assert order["customer_phone"] == PHONE
    for who, answer in refused.items():
        assert (who, answer.status_code, answer.json()["code"]) == (who, 404, "order_not_found")
        assert PHONE not in answer.text
    assert (signed_in.status_code, signed_in.json()["customer_phone"]) == (200, PHONE)
    assert (stranger.status_code, stranger.json()["code"]) == (404, "order_not_found")
