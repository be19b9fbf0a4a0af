"""Sign-in codes over WhatsApp: auth's `otp_channel = "whatsapp"` sends the code as an authentication template."""

from __future__ import annotations

import httpx

from kernel.testing.project import Running
from tests.plugins.messaging_whatsapp.conftest import Shop, Simulator, new_customer


async def test_a_customer_signs_in_with_a_code_sent_over_whatsapp(
    server: Running, simulator: Simulator, shop: Shop
) -> None:
    phone = new_customer()
    host = {"Host": shop.headers["Host"]}
    async with httpx.AsyncClient(base_url=server.base_url, timeout=30) as http:
        requested = await http.post("/auth/otp/request", headers=host, json={"phone": phone})
        assert requested.status_code == 202, requested.text
        [message] = simulator.accepted(phone)
        template = message["payload"]["template"]
        assert (message["type"], template["name"]) == ("template", "sign_in_code")
        body, button = template["components"]
        code = body["parameters"][0]["text"]
        assert button["sub_type"] == "url" and button["parameters"][0]["text"] == code  # the copy-code button
        assert message["phone_number_id"] == shop.phone_number_id
        verified = await http.post("/auth/otp/verify", headers=host, json={"phone": phone, "code": code})
    assert verified.status_code == 200, verified.text
    assert verified.json()["access_token"]


async def test_a_code_whatsapp_refuses_is_not_kept(server: Running, simulator: Simulator, shop: Shop) -> None:
    phone = new_customer()
    simulator.control("POST", "failures", json={"to": phone, "codes": [131026]})
    async with httpx.AsyncClient(base_url=server.base_url, timeout=30) as http:
        requested = await http.post("/auth/otp/request", headers={"Host": shop.headers["Host"]}, json={"phone": phone})
    assert requested.status_code == 503
    assert requested.json()["code"] == "service_unavailable"
    assert simulator.accepted(phone) == []
