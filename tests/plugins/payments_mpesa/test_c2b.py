"""C2B paybill/till payments: the shop's URLs registered with Daraja (by the provider and by `soko mpesa
register-c2b`), payments simulated and parsed against the order reference, and routed to the shop by shortcode."""

from __future__ import annotations

import asyncio
import base64
import json
from urllib.parse import urlsplit

import httpx

from kernel import Money, PaymentEvent, PaymentStatus, WebhookRequest
from kernel.inbox import resolve_tenant
from kernel.kernel import Kernel
from kernel.testing.project import SOKO, Project, eventually
from plugins.payments_mpesa.simulator import DarajaSimulator
from tests.plugins.payments_mpesa.test_provider import provider_of


async def shortcode_of(kernel: Kernel, shop: str) -> str:
    return (await provider_of(kernel).credentials(shop)).shortcode


async def test_register_points_confirmation_and_validation_at_the_shops_url(
    kernel: Kernel, shop: str, simulator: DarajaSimulator
) -> None:
    provider = provider_of(kernel)
    answer = await provider.register_c2b(shop)
    assert answer["ResponseCode"] == "0"
    url = provider.callback_url(shop)
    assert simulator.c2b_urls[await shortcode_of(kernel, shop)] == (f"{url}?c2b=confirmation", f"{url}?c2b=validation")


async def test_register_command(kernel: Kernel, shop: str, project: Project, simulator: DarajaSimulator) -> None:
    process = await asyncio.create_subprocess_exec(
        *SOKO, "mpesa", "register-c2b", shop,
        env=project.environment(), cwd=project.root, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    out, err = await asyncio.wait_for(process.communicate(), timeout=60)
    assert process.returncode == 0, err.decode()
    assert json.loads(out.decode().strip().splitlines()[-1])["ResponseCode"] == "0"
    assert await shortcode_of(kernel, shop) in simulator.c2b_urls


async def test_simulated_paybill_payment_parses_against_the_order_reference(
    kernel: Kernel, shop: str, simulator: DarajaSimulator
) -> None:
    provider = provider_of(kernel)
    await provider.register_c2b(shop)
    credentials = await provider.credentials(shop)
    shortcode = credentials.shortcode
    pair = f"{credentials.consumer_key.get_secret_value()}:{credentials.consumer_secret.get_secret_value()}"
    async with httpx.AsyncClient(base_url=simulator.url, timeout=5) as client:  # type: ignore[attr-defined]
        token = (
            await client.get(
                "/oauth/v1/generate",
                params={"grant_type": "client_credentials"},
                headers={"Authorization": "Basic " + base64.b64encode(pair.encode()).decode()},
            )
        ).json()["access_token"]
        payment = {
            "ShortCode": shortcode,
            "CommandID": "CustomerPayBillOnline",
            "Amount": 250,
            "Msisdn": "254708374149",
            "BillRefNumber": "order1001",
        }
        answer = await client.post("/mpesa/c2b/v1/simulate", json=payment, headers={"Authorization": f"Bearer {token}"})
    assert answer.json()["ResponseCode"] == "0"

    def delivered() -> list[tuple[str, dict[str, object]]]:
        return [(d.url, d.body) for d in simulator.deliveries if d.body.get("BusinessShortCode") == shortcode]

    await eventually(lambda: len(delivered()) == 2, timeout=10, what="validation and confirmation")
    parsed = []
    for url, body in delivered():
        query = dict(part.split("=") for part in urlsplit(url).query.split("&"))
        request = WebhookRequest(method="POST", body=json.dumps(body).encode(), client_ip="127.0.0.1", query=query)
        assert await provider.verify_webhook(request)
        parsed.append(await provider.parse_webhook(request))
    validation, [confirmation] = parsed
    assert validation == []
    assert (confirmation.status, confirmation.amount, confirmation.reference, confirmation.tenant_hint) == (
        PaymentStatus.CAPTURED,
        Money(25_000, "KES"),
        "order1001",
        shortcode,
    )


async def test_c2b_events_are_routed_to_the_shop_by_shortcode(kernel: Kernel, shop: str) -> None:
    """The inbox resolves a C2B event's tenant through the plugin's webhook_tenant hook, by the shortcode."""

    async def tenant(hint: str) -> tuple[str | None, str]:
        event = PaymentEvent("mpesa", "RKTQDM7W6S", "RKTQDM7W6S", PaymentStatus.CAPTURED, tenant_hint=hint)
        return await resolve_tenant(kernel, "mpesa", event, None)

    assert await tenant(await shortcode_of(kernel, shop)) == (shop, "")
    assert (await tenant("999999"))[0] is None
