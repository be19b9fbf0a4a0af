"""Webhook routes: which tenant a receiver's key belongs to, answerable before any tenant is bound.

A key is a receiver's routing key (M-Pesa shortcode, WhatsApp phone_number_id; kind `credentials`) or a provider
reference a plugin stored (kind `provider_ref`). Claims are written in the claiming tenant's own transaction
(the tenant comes from it, never from an argument) and read with no tenant bound, both through SECURITY DEFINER
functions of the kernel's migration: the app role cannot read or write the table itself, and no tenant-owned
table's row-level security is opened for the lookup. A key two tenants claim names neither: `tenant_for` says
None, and the webhook inbox quarantines what it cannot route.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from kernel.kernel import Kernel


class WebhookRoutes:
    """`kernel.webhook_routes`."""

    def __init__(self, kernel: Kernel) -> None:
        self._kernel = kernel

    async def claim(self, receiver: str, kind: str, key: str, *, exclusive: bool = False) -> None:
        """Route `key` to the tenant of the open transaction; `exclusive` drops that tenant's other keys of `kind`."""
        await self._kernel.connection().execute(
            "SELECT soko_claim_route($1, $2, $3, $4)", receiver, kind, key, exclusive
        )

    async def tenant_for(self, receiver: str, kind: str, key: str) -> str | None:
        """The one tenant that claimed `key`, or None (nobody, or more than one)."""
        if not key:
            return None
        async with self._kernel.unscoped_connection() as connection:
            tenant = await connection.fetchval("SELECT soko_route_tenant($1, $2, $3)", receiver, kind, key)
        return None if tenant is None else str(tenant)

    async def holders(self, kind: str) -> list[tuple[str, str]]:
        """Every (tenant, receiver) holding a key of `kind`: what maintenance (key rotation) walks."""
        async with self._kernel.unscoped_connection() as connection:
            rows = await connection.fetch("SELECT tenant::text, receiver FROM soko_route_holders($1)", kind)
        return [(row["tenant"], row["receiver"]) for row in rows]
