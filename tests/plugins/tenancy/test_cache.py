"""The resolution cache on its own: expiry, bounded size, one load per key, and no stale store after a change."""

from __future__ import annotations

import asyncio

import pytest

from plugins.tenancy.cache import TtlCache


class Clock:
    """Time that moves only when the test says so."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class Source:
    """A loader that counts its calls; `gate` holds loads until the test releases them."""

    def __init__(self) -> None:
        self.calls: list[str] = []
        self.gate = asyncio.Event()
        self.gate.set()
        self.value = "v1"

    async def load(self, key: str) -> str:
        self.calls.append(key)
        await self.gate.wait()
        return f"{key}:{self.value}"


async def test_hit_until_the_ttl_then_reload() -> None:
    clock, source = Clock(), Source()
    cache: TtlCache[str, str] = TtlCache(ttl=60, max_entries=10, clock=clock)
    assert await cache.get("a", source.load) == "a:v1"
    source.value = "v2"
    clock.now += 59.9
    assert await cache.get("a", source.load) == "a:v1"
    clock.now += 0.2
    assert await cache.get("a", source.load) == "a:v2"
    assert source.calls == ["a", "a"]


async def test_concurrent_misses_share_one_load() -> None:
    source = Source()
    source.gate.clear()
    cache: TtlCache[str, str] = TtlCache(ttl=60, max_entries=10)
    waiters = [asyncio.create_task(cache.get("a", source.load)) for _ in range(100)]
    await asyncio.sleep(0)
    source.gate.set()
    assert set(await asyncio.gather(*waiters)) == {"a:v1"}
    assert source.calls == ["a"]


async def test_a_cancelled_waiter_does_not_cancel_the_shared_load() -> None:
    source = Source()
    source.gate.clear()
    cache: TtlCache[str, str] = TtlCache(ttl=60, max_entries=10)
    first = asyncio.create_task(cache.get("a", source.load))
    second = asyncio.create_task(cache.get("a", source.load))
    await asyncio.sleep(0)
    first.cancel()
    source.gate.set()
    assert await second == "a:v1"
    assert first.cancelled()
    assert await cache.get("a", source.load) == "a:v1"
    assert source.calls == ["a"]


async def test_a_load_begun_before_a_change_is_not_stored() -> None:
    source = Source()
    source.gate.clear()
    cache: TtlCache[str, str] = TtlCache(ttl=60, max_entries=10)
    before = asyncio.create_task(cache.get("a", source.load))
    await asyncio.sleep(0)
    cache.clear()  # the tenant changed while its old state was being read
    source.gate.set()
    await before  # its waiters asked before the change and get what it read
    await cache.get("a", source.load)
    assert source.calls == ["a", "a"]  # but what it read was not cached


async def test_discard_keeps_only_what_it_is_told_to() -> None:
    source = Source()
    cache: TtlCache[str, str] = TtlCache(ttl=60, max_entries=10)
    for key in ("a", "b"):
        await cache.get(key, source.load)
    cache.discard(lambda value: not value.startswith("a:"))
    await cache.get("a", source.load)
    await cache.get("b", source.load)
    assert source.calls == ["a", "b", "a"]


async def test_the_oldest_entry_goes_when_full() -> None:
    source = Source()
    cache: TtlCache[str, str] = TtlCache(ttl=60, max_entries=2)
    for key in ("a", "b", "c"):
        await cache.get(key, source.load)
    await cache.get("c", source.load)
    await cache.get("b", source.load)
    await cache.get("a", source.load)
    assert source.calls == ["a", "b", "c", "a"]


async def test_a_failed_load_is_not_cached() -> None:
    calls = 0

    async def failing(key: str) -> str:
        nonlocal calls
        calls += 1
        raise ConnectionError("database unavailable")

    cache: TtlCache[str, str] = TtlCache(ttl=60, max_entries=10)
    for _ in range(2):
        with pytest.raises(ConnectionError):
            await cache.get("a", failing)
    assert calls == 2
