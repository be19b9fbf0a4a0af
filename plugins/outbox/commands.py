"""`soko outbox`: read the messages the outbox channel kept, e.g. the sign-in code just requested."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import click

from kernel import Kernel
from plugins.outbox.channel import recent
from plugins.outbox.settings import OutboxSettings
from plugins.tenancy.public import tenant_scope


def outbox_command(kernel: Kernel) -> click.Command:
    @click.command("outbox")
    @click.option("--tenant", required=True, help="the store's slug or id")
    @click.option("--to", "recipient", help="only messages to this E.164 number")
    @click.option("--limit", type=int, help="how many, newest first")
    @click.option("--json", "as_json", is_flag=True, help="machine-readable output")
    def outbox(tenant: str, recipient: str | None, limit: int | None, as_json: bool) -> None:
        """Show TENANT's newest outbox messages."""

        async def read() -> list[dict[str, Any]]:
            async with kernel.running(), tenant_scope(kernel, tenant):
                return await recent(limit or kernel.settings_of("outbox", OutboxSettings).list_limit, recipient)

        try:
            messages = asyncio.run(read())
        except LookupError as error:
            raise click.ClickException(f"tenant_not_found: {error}") from None
        if as_json:
            click.echo(json.dumps(messages, indent=2, default=str))
            return
        for message in messages:
            content = message["body"] or message["template"]
            click.echo(f"{message['created_at']:%Y-%m-%d %H:%M:%S}  {message['recipient']}  {content}")

    return outbox
