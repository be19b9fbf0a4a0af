"""Send pacing shared by every process through Redis: the number's throughput and the per-customer pair limit.

- Throughput: a token bucket per phone number id (`send_rate_per_second`, Meta's 80/s by default), refilled
  continuously. Taking a token is one Lua script, so processes never race; the clock is Redis's own.
- Pair pacing: about one message per `pair_interval_seconds` to one customer (Meta's 131056). A send reserves
  the next slot of its (number, customer) pair; one that would come too early is told how long to wait instead.

Keys hold a hash of the customer's number, never the number.
"""

from __future__ import annotations

import hashlib

from kernel import RedisClient

_BUCKET_SCRIPT = """
local now = redis.call('TIME')
local now_ms = tonumber(now[1]) * 1000 + math.floor(tonumber(now[2]) / 1000)
local rate = tonumber(ARGV[1])
local state = redis.call('HMGET', KEYS[1], 'tokens', 'at')
local tokens = tonumber(state[1]) or rate
local at = tonumber(state[2]) or now_ms
tokens = math.min(rate, tokens + (now_ms - at) * rate / 1000)
local wait = 0
if tokens >= 1 then
  tokens = tokens - 1
else
  wait = math.ceil((1 - tokens) * 1000 / rate)
end
redis.call('HSET', KEYS[1], 'tokens', tostring(tokens), 'at', now_ms)
redis.call('PEXPIRE', KEYS[1], 60000)
return wait
"""

_PAIR_SCRIPT = """
local now = redis.call('TIME')
local now_ms = tonumber(now[1]) * 1000 + math.floor(tonumber(now[2]) / 1000)
local free_at = tonumber(redis.call('GET', KEYS[1]) or '0')
if free_at > now_ms then
  return free_at - now_ms
end
redis.call('SET', KEYS[1], now_ms + tonumber(ARGV[1]), 'PX', tonumber(ARGV[1]) + 1000)
return 0
"""


class Pacing:
    def __init__(self, redis: RedisClient, *, prefix: str, rate_per_second: int, pair_interval_seconds: float) -> None:
        self._redis = redis
        self._prefix = prefix
        self._rate = rate_per_second
        self._pair_ms = int(pair_interval_seconds * 1000)
        self._take = redis.register_script(_BUCKET_SCRIPT)
        self._reserve = redis.register_script(_PAIR_SCRIPT)

    async def token_wait(self, phone_number_id: str) -> float:
        """0 when a send token was taken now; else seconds until one is (nothing was taken)."""
        waited = await self._take(keys=[f"{self._prefix}:rate:{phone_number_id}"], args=[self._rate])
        return int(waited) / 1000

    async def pair_wait(self, phone_number_id: str, customer: str) -> float:
        """0 when the customer's next slot was reserved for a send now; else seconds until it is free."""
        if self._pair_ms == 0:
            return 0.0
        digest = hashlib.sha256(f"{phone_number_id}:{customer}".encode()).hexdigest()[:24]
        waited = await self._reserve(keys=[f"{self._prefix}:pair:{digest}"], args=[self._pair_ms])
        return int(waited) / 1000
