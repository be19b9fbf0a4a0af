"""Send pacing on the real Redis, shared by separate clients as by separate processes."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator

import pytest
from redis.asyncio import Redis

from kernel.testing.services import Servers
from plugins.messaging_whatsapp.pacing import Pacing


@pytest.fixture
async def two_processes(soko_servers: Servers) -> AsyncIterator[tuple[Pacing, Pacing]]:
    prefix = f"soko:test-pacing:{uuid.uuid4().hex}"
    first, second = Redis.from_url(soko_servers.redis_url), Redis.from_url(soko_servers.redis_url)
    try:
        yield (
            Pacing(first, prefix=prefix, rate_per_second=1, pair_interval_seconds=30),
            Pacing(second, prefix=prefix, rate_per_second=1, pair_interval_seconds=30),
        )
    finally:
        await first.aclose()
        await second.aclose()


async def test_one_numbers_throughput_is_shared_by_every_process(two_processes: tuple[Pacing, Pacing]) -> None:
    first, second = two_processes
    assert await first.token_wait("1001") == 0
    assert await second.token_wait("1001") > 0  # the bucket of one token per second is empty for everyone
    assert await second.token_wait("2002") == 0  # another number has its own bucket


async def test_a_customer_gets_one_slot_per_pair_interval(two_processes: tuple[Pacing, Pacing]) -> None:
    first, second = two_processes
    assert await first.pair_wait("1001", "+254712345678") == 0
    wait = await second.pair_wait("1001", "+254712345678")
    assert 0 < wait <= 30
    assert await second.pair_wait("1001", "+254712345679") == 0
    assert await second.pair_wait("2002", "+254712345678") == 0
