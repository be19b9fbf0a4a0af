"""`soko dev` with the Graph API simulator: the demo store gets a WhatsApp number there, so its sign-in codes and
receipts go to the simulator (`GET <base_url>/_sim/messages` lists them) with nothing to set up."""

from __future__ import annotations

from kernel import Kernel
from plugins.messaging_whatsapp.runtime import CHANNEL
from plugins.tenancy.public import tenant_scope

DEMO_STORE = "demo"
# Any digits and any token of 8 or more characters do for the simulator; the id routes its webhooks to the demo.
DEMO_NUMBER = {"phone_number_id": "100000000000001", "waba_id": "200000000000001", "access_token": "simulator-token"}


async def seed_demo_number(kernel: Kernel) -> None:
    async with tenant_scope(kernel, DEMO_STORE) as demo:
        if await kernel.credentials.get(demo.id, CHANNEL) is None:
            await kernel.credentials.put(demo.id, CHANNEL, DEMO_NUMBER)
