"""`soko mpesa register-c2b TENANT`: point Daraja's paybill/till confirmations at the shop's webhook URL."""

from __future__ import annotations

import asyncio
import json

import click

from kernel import Kernel, PaymentError
from plugins.payments_mpesa.provider import PROVIDER, MpesaProvider


def mpesa_command(kernel: Kernel) -> click.Group:
    @click.group("mpesa")
    def mpesa() -> None:
        """M-Pesa (Daraja) operations for one shop."""

    @mpesa.command("register-c2b")
    @click.argument("tenant")
    def register_c2b(tenant: str) -> None:
        """Register TENANT's C2B confirmation and validation URLs with Daraja (once per shortcode)."""
        provider = kernel.payments[PROVIDER]
        assert isinstance(provider, MpesaProvider)

        async def run() -> dict[str, object]:
            async with kernel.running():
                return await provider.register_c2b(tenant)

        try:
            answer = asyncio.run(run())
        except PaymentError as error:
            raise click.ClickException(f"Daraja refused: {error}") from None
        click.echo(json.dumps(answer))

    return mpesa
