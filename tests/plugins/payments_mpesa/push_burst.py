"""One process of the token race: build the kernel from the project on disk, wait for the start file, then send
COUNT STK pushes at once for TENANT and print how many Daraja accepted. Run with `python -m`."""

from __future__ import annotations

import asyncio
import json
import sys
import uuid
from pathlib import Path

from kernel import Money, PaymentError, PaymentIntent
from kernel.kernel import build_kernel


async def burst(tenant: str, count: int, start: Path) -> dict[str, object]:
    kernel = build_kernel()
    provider = kernel.payments["mpesa"]
    intents = [
        PaymentIntent(tenant, f"order-{n}", Money(10_000, "KES"), uuid.uuid4().hex, "+254712345678")
        for n in range(count)
    ]
    async with kernel.running():
        sys.stdout.write("ready\n")
        sys.stdout.flush()
        while not start.exists():  # the start line: both processes fire together
            await asyncio.sleep(0.005)
        results = await asyncio.gather(*(provider.initiate(intent) for intent in intents), return_exceptions=True)
    errors = [repr(result) for result in results if isinstance(result, PaymentError | Exception)]
    return {"accepted": count - len(errors), "errors": errors}


if __name__ == "__main__":
    tenant, count, start = sys.argv[1], int(sys.argv[2]), Path(sys.argv[3])
    sys.stdout.write(json.dumps(asyncio.run(burst(tenant, count, start))) + "\n")
