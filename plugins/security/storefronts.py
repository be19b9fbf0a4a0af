"""Which tenant a storefront origin belongs to, asked of the tenancy plugin (when it is enabled).

The answer comes from tenancy's per-process cache of hosts (kept in step across processes by its change
notifications), so a warm lookup is a dict read. A database failure is not the browser's fault and must not
turn into a response without security headers, so it counts as "no tenant" and is logged.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable

import asyncpg

from kernel import Kernel

log = logging.getLogger("soko.security")

StorefrontLookup = Callable[[str], Awaitable[str | None]]  # a host (port allowed) -> the active tenant's id


def storefront_lookup(kernel: Kernel) -> StorefrontLookup | None:
    """None when tenancy is not enabled: then only the panel origins are allowed."""
    if "tenancy" not in kernel.enabled:
        return None
    from plugins.tenancy.public import TenantStatus, tenant_for_host

    async def tenant_of(host: str) -> str | None:
        try:
            found = await tenant_for_host(kernel, host)
        except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError) as error:
            log.warning("storefront origin check failed: %s", type(error).__name__)
            return None
        if found is not None and found.status is TenantStatus.ACTIVE:
            return found.id
        return None

    return tenant_of
