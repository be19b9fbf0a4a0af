"""The sliding window: one Lua script checks and counts every key of a request, atomically, in one round trip.

Algorithm: a sliding log. Each key is a sorted set of the requests it admitted in the last window, scored by
their arrival time in microseconds by Redis's own clock (`TIME`, so processes with skewed clocks agree). For each
key the script drops entries older than the window and counts the rest. Only if every key is under its limit is
the request admitted, and then it is added to every key; a refused request is added to none, so a client that
keeps hammering gets back in as soon as its own admitted requests age out, and one key's refusal never uses up
another key's quota.

Error bound: none. The count is exact over any window of `window_seconds` ending now (a request exactly one
window old has left it), so no burst straddling a boundary ever gets more than `limit`: there are no boundaries.
The price is memory: at most `limit` entries (a few dozen bytes each) per key, and the key expires one window
after its last admitted request. Redis runs a script as one command, so concurrent requests from any number of
processes see each other's counts (no read-then-write race).

The script is sent once per Redis server: EVALSHA, and on NOSCRIPT (a restarted or failed-over Redis) it is
loaded again and retried (redis-py's `Script`).
"""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass

from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.commands.core import AsyncScript
from redis.exceptions import RedisError

from kernel import RedisClient
from plugins.ratelimit.keys import Counter

MICROSECONDS = 1_000_000
OpenClient = Callable[..., AbstractAsyncContextManager[RedisClient]]

# KEYS: the request's keys. ARGV[1]: this request's random member (64 bits: unique in practice); then per key:
# its limit and its window in microseconds.
# Returns: admitted (1/0), then per key: its count (including this request when admitted) and the microseconds
# until its oldest entry that stands in the way of one more request leaves the window (0 for an empty key).
SLIDING_LOG = """
local now_parts = redis.call('TIME')
local now = tonumber(now_parts[1]) * 1000000 + tonumber(now_parts[2])
local counts = {}
local admitted = 1
for i, key in ipairs(KEYS) do
  local limit = tonumber(ARGV[2 * i])
  local window = tonumber(ARGV[2 * i + 1])
  redis.call('ZREMRANGEBYSCORE', key, '-inf', now - window)
  counts[i] = redis.call('ZCARD', key)
  if counts[i] >= limit then admitted = 0 end
end
local result = {admitted}
for i, key in ipairs(KEYS) do
  local limit = tonumber(ARGV[2 * i])
  local window = tonumber(ARGV[2 * i + 1])
  if admitted == 1 then
    redis.call('ZADD', key, now, ARGV[1])
    redis.call('PEXPIRE', key, math.ceil(window / 1000))
    counts[i] = counts[i] + 1
  end
  local wait = 0
  if counts[i] > 0 then
    local blocking = redis.call('ZRANGE', key, math.max(counts[i] - limit, 0), math.max(counts[i] - limit, 0),
      'WITHSCORES')
    wait = math.max(tonumber(blocking[2]) + window - now, 0)
  end
  result[2 * i] = counts[i]
  result[2 * i + 1] = wait
end
return result
"""


class LimiterUnavailable(Exception):
    """Redis did not answer in time or at all; the matched policies' failure modes decide."""


@dataclass(frozen=True, slots=True)
class Count:
    """Where one counter stands after this request."""

    counter: Counter
    count: int
    wait_us: int

    @property
    def remaining(self) -> int:
        return max(self.counter.policy.limit - self.count, 0)

    @property
    def exhausted(self) -> bool:
        return self.count >= self.counter.policy.limit


@dataclass(frozen=True, slots=True)
class Outcome:
    admitted: bool
    counts: list[Count]


class SlidingWindow:
    """One dedicated Redis client with short socket timeouts and no retries, plus a hard deadline per call."""

    def __init__(self, timeout_ms: int) -> None:
        self._timeout = timeout_ms / 1000
        self._redis: RedisClient | None = None
        self._script: AsyncScript | None = None

    @asynccontextmanager
    async def connected(self, open_client: OpenClient) -> AsyncIterator[None]:
        """Hold the client (`open_client(**options)`, i.e. `kernel.redis_opened`) for the process's lifetime;
        connections are made on demand and remade after Redis comes back, so nothing here needs Redis to be up."""
        options = {"socket_timeout": self._timeout, "socket_connect_timeout": self._timeout}
        async with open_client(**options, retry=Retry(NoBackoff(), 0)) as redis:
            self._redis = redis
            self._script = redis.register_script(SLIDING_LOG)
            try:
                yield
            finally:
                self._redis = self._script = None

    async def hit(self, counters: Sequence[Counter]) -> Outcome:
        """Count a request against every counter, or against none if any is exhausted."""
        if self._script is None:
            raise LimiterUnavailable("the ratelimit plugin's lifespan has not started")
        args: list[str | int] = [secrets.token_hex(8)]
        for counter in counters:
            args += [counter.policy.limit, counter.policy.window_seconds * MICROSECONDS]
        try:
            async with asyncio.timeout(self._timeout):
                reply = await self._script(keys=[counter.redis_key for counter in counters], args=args)
        except (TimeoutError, RedisError, OSError) as error:
            raise LimiterUnavailable(type(error).__name__) from error
        counts = [
            Count(counter, int(reply[1 + 2 * index]), int(reply[2 + 2 * index]))
            for index, counter in enumerate(counters)
        ]
        return Outcome(admitted=reply[0] == 1, counts=counts)
