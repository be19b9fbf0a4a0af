"""A small in-process cache with a time to live, bounded size and one load per key at a time.

Built for request resolution: a hit is a dict lookup and a clock read; concurrent misses of the same key share
one load (200 requests arriving together for a cold host make one query, not 200); a load that began before an
invalidation never stores its possibly stale answer.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Hashable
from typing import Generic, TypeVar

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")


class TtlCache(Generic[K, V]):
    """Entries expire `ttl` seconds after they were stored; the oldest go first when `max_entries` is reached.

    With one TTL for all entries, insertion order is expiry order, so evicting the first entry evicts the one
    closest to expiring anyway.
    """

    def __init__(self, ttl: float, max_entries: int, clock: Callable[[], float] = time.monotonic) -> None:
        self._ttl = ttl
        self._max_entries = max_entries
        self._clock = clock
        self._entries: dict[K, tuple[V, float]] = {}
        self._loading: dict[K, asyncio.Task[V]] = {}
        self._generation = 0

    async def get(self, key: K, load: Callable[[K], Awaitable[V]]) -> V:
        """The cached value of `key`, else what `load(key)` returns (stored, unless invalidated meanwhile)."""
        entry = self._entries.get(key)
        if entry is not None and entry[1] > self._clock():
            return entry[0]
        task = self._loading.get(key)
        if task is None:
            task = asyncio.ensure_future(self._load(key, load, self._generation))
            task.add_done_callback(_retrieve)  # its waiters may all be gone by the time it fails
            self._loading[key] = task
        # Shielded: a waiter whose request is cancelled must not cancel the load the others wait for.
        return await asyncio.shield(task)

    def discard(self, keep: Callable[[V], bool]) -> None:
        """Drop every entry whose value `keep` rejects, and make loads in flight forget their answers."""
        self._entries = {key: entry for key, entry in self._entries.items() if keep(entry[0])}
        self._loading.clear()
        self._generation += 1

    def clear(self) -> None:
        self.discard(lambda _: False)

    async def _load(self, key: K, load: Callable[[K], Awaitable[V]], generation: int) -> V:
        try:
            value = await load(key)
        finally:
            if self._loading.get(key) is asyncio.current_task():
                del self._loading[key]
        if generation == self._generation:
            self._entries.pop(key, None)
            if len(self._entries) >= self._max_entries:
                del self._entries[next(iter(self._entries))]
            self._entries[key] = (value, self._clock() + self._ttl)
        return value


def _retrieve(task: asyncio.Task[object]) -> None:
    if not task.cancelled():
        task.exception()
