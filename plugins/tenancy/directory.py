"""Which tenant a host or an id names, from the process's cache; the database only on a miss.

One directory per kernel. Entries expire after `cache_ttl_seconds`; a change to a tenant or its domains drops
that tenant's entries and every negative one in every process (see `changes`), so the TTL is only a safety net.
"""

from __future__ import annotations

from enum import Enum
from typing import Literal

from kernel import Kernel
from plugins.tenancy import lookups
from plugins.tenancy.cache import TtlCache
from plugins.tenancy.hosts import HostRules
from plugins.tenancy.records import TenantRecord
from plugins.tenancy.settings import TenancySettings


class Unclaimed(Enum):
    """A host that names no tenant (an IP, the apex, a reserved label): the X-Tenant-ID header may name one."""

    HOST = "host"


HostResult = TenantRecord | None | Literal[Unclaimed.HOST]


class TenantDirectory:
    def __init__(self, settings: TenancySettings) -> None:
        self.rules = HostRules(tuple(settings.base_domains), frozenset(settings.reserved_slugs))
        self._hosts: TtlCache[str, HostResult] = TtlCache(settings.cache_ttl_seconds, settings.cache_max_entries)
        self._ids: TtlCache[str, TenantRecord | None] = TtlCache(settings.cache_ttl_seconds, settings.cache_max_entries)

    async def for_host(self, host: str) -> HostResult:
        """The tenant `host` names, None if it names one that does not exist, `Unclaimed.HOST` if it names none."""
        return await self._hosts.get(host, self._load_host)

    async def for_id(self, tenant_id: str) -> TenantRecord | None:
        return await self._ids.get(tenant_id, lookups.tenant_by_id)

    def forget(self, tenant_id: str) -> None:
        """Drop what is cached about this tenant, and every negative answer (it may be this tenant, just created)."""
        self._hosts.discard(lambda found: found is Unclaimed.HOST or (found is not None and found.id != tenant_id))
        self._ids.discard(lambda found: found is not None and found.id != tenant_id)

    def forget_all(self) -> None:
        self._hosts.clear()
        self._ids.clear()

    async def _load_host(self, host: str) -> HostResult:
        claim = self.rules.claim(host)
        return Unclaimed.HOST if claim is None else await lookups.tenant_by_claim(claim)


def directory_for(kernel: Kernel) -> TenantDirectory:
    """The kernel's directory, shared by its middleware, its lifespan and the writes made through it."""
    return kernel.state("tenancy", lambda built: TenantDirectory(built.settings_of("tenancy", TenancySettings)))
