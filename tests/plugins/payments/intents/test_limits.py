"""The shipped payment limits through real servers: 10 a minute per cart (a payment counts by its order, the
order of one cart) and a store-wide ceiling, so a busy store's 30 carts check out and pay within a minute."""

from __future__ import annotations

from pathlib import Path

from kernel.testing.services import Database, Servers
from plugins.payments_mpesa.simulator import DarajaSimulator
from tests.plugins.payments.intents.conftest import ENABLED, gather, intents_project, running_stack


async def test_thirty_carts_check_out_and_pay_in_a_minute_and_one_order_gets_ten_tries(
    tmp_path: Path, soko_servers: Servers, intents_database: Database, daraja: DarajaSimulator
) -> None:
    project = intents_project(
        tmp_path,
        soko_servers,
        intents_database,
        daraja.url,  # type: ignore[attr-defined]
        enabled=[*ENABLED, "ratelimit"],
    )
    with running_stack(project, daraja, intents_database, worker=False) as stack:
        async with stack.http:
            tenant = await stack.shop(on_hand=100)
            orders = await gather(*(stack.order(tenant) for _ in range(30)))  # each asserts its 201
            paid = await gather(*(stack.pay(tenant, order_id) for order_id in orders))
            assert [answer.status_code for answer in paid] == [201] * 30
            assert paid[0].headers["RateLimit-Policy"].count("payments") == 2
            one = await stack.order(tenant)
            tries = [(await stack.pay(tenant, one)).status_code for _ in range(11)]
            # The first opens the intent, the next nine are told it is in progress, the eleventh is limited.
            assert tries == [201] + [409] * 9 + [429]
