"""The demo store's catalogue for `soko dev`: a few products, each topped up to its stock on every start, and
the shell lines that shop in it (`soko dev` prints them; the README shows them for 127.0.0.1:8000)."""

from __future__ import annotations

from kernel import Kernel
from plugins.commerce import catalog
from plugins.commerce.settings import CommerceSettings
from plugins.tenancy.public import tenant_scope

DEMO_STORE = "demo"
# (sku, name, price in minor units, units on the shelf)
CATALOGUE = (
    ("chai-250g", "Kericho chai, 250 g", 35_000, 50),
    ("kikoi", "Cotton kikoi", 120_000, 20),
    ("kiondo", "Sisal kiondo basket", 250_000, 10),
)
_TAKE_ID = """python3 -c 'import json, sys; print(json.load(sys.stdin)["id"])'"""


def try_it(bind: str) -> list[str]:
    """Shell lines from the catalogue to a paid order. Each can be pasted on its own; CART and ORDER carry the
    ids from one to the next. The checkout's Idempotency-Key is made from the cart and the payment's from the
    order: a cart is checked out once and an order paid once, so pasting a line again replays its answer instead
    of failing. The payment goes to M-Pesa's simulator (payments_mpesa in simulator mode), which answers the
    prompt for the customer and calls back; a moment later the order is paid."""
    url = f"http://{bind}"
    host = f"-H 'Host: {DEMO_STORE}.localhost'"
    checkout = '{\\"cart_id\\": \\"$CART\\", \\"customer_phone\\": \\"0712345678\\"}'
    pay = '{\\"order_id\\": \\"$ORDER\\", \\"provider\\": \\"mpesa\\", \\"phone\\": \\"0712345678\\"}'
    return [
        f"curl -s {host} {url}/products",
        f"CART=$(curl -s {host} --json '{{}}' {url}/carts | {_TAKE_ID}); echo $CART",
        f"""curl -s {host} --json '{{"sku": "{CATALOGUE[0][0]}", "quantity": 2}}' {url}/carts/$CART/items""",
        f'ORDER=$(curl -s {host} -H "Idempotency-Key: checkout-$CART" --json "{checkout}" {url}/checkout'
        f" | {_TAKE_ID}); echo $ORDER",
        f'curl -s {host} -H "Idempotency-Key: pay-$ORDER" --json "{pay}" {url}/payments/intents',
    ]


async def seed(kernel: Kernel) -> str:
    currency = kernel.settings_of("commerce", CommerceSettings).default_currency
    async with tenant_scope(kernel, DEMO_STORE):
        connection = kernel.connection()
        for sku, name, price_minor, stock in CATALOGUE:
            await catalog.ensure_product(connection, sku=sku, name=name, price_minor=price_minor, currency=currency)
            await catalog.top_up(connection, sku, stock)
    heading = f"demo catalogue: {', '.join(sku for sku, *_ in CATALOGUE)}; shop in it from another terminal:"
    return "\n".join([heading, *(f"  {line}" for line in try_it(kernel.settings.bind))])
