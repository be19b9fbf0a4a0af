"""Daraja OAuth tokens, cached in Redis per consumer key and fetched by one process at a time.

Daraja rate-limits token requests and a token lasts an hour, so every web and worker process shares one: the
first caller to miss takes a short Redis lock and fetches; the others poll the cache until it appears or their
deadline passes. The cache key holds a hash of the consumer key, never the key itself, and no secret is stored.
"""

from __future__ import annotations

import asyncio
import hashlib
import secrets
import time
from collections.abc import Awaitable, Callable

from kernel import PaymentError, PaymentErrorCode, RedisClient

_POLL_SECONDS = 0.05
# Deletes the lock only if it is still ours: a holder that overran its lock must not release the next one's.
_RELEASE = "if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('del', KEYS[1]) end return 0"

Fetch = Callable[[], Awaitable[tuple[str, int]]]


class TokenCache:
    def __init__(self, redis: RedisClient, prefix: str, *, refresh_early: int, wait: float) -> None:
        self._redis = redis
        self._prefix = prefix
        self._refresh_early = refresh_early
        self._wait = wait

    def key(self, consumer_key: str) -> str:
        return f"{self._prefix}:payments_mpesa:token:{hashlib.sha256(consumer_key.encode()).hexdigest()}"

    async def get(self, consumer_key: str, fetch: Fetch) -> str:
        """The cached token, else one fetched by `fetch()` (token, expires_in) in exactly one process."""
        key = self.key(consumer_key)
        lock = f"{key}:lock"
        deadline = time.monotonic() + self._wait
        while True:
            cached = await self._redis.get(key)
            if cached:
                return cached.decode()
            nonce = secrets.token_hex(16)
            if await self._redis.set(lock, nonce, nx=True, px=int(self._wait * 1000)):
                try:
                    return await self._fetch_once(key, fetch)
                finally:
                    await self._redis.eval(_RELEASE, 1, lock, nonce)  # type: ignore[misc]
            if time.monotonic() > deadline:
                raise PaymentError(PaymentErrorCode.UNAVAILABLE, "timed out waiting for a Daraja token", retryable=True)
            await asyncio.sleep(_POLL_SECONDS)

    async def _fetch_once(self, key: str, fetch: Fetch) -> str:
        cached = await self._redis.get(key)  # the previous holder may have stored it just before we locked
        if cached:
            return cached.decode()
        token, expires_in = await fetch()
        ttl = expires_in - self._refresh_early if expires_in > 2 * self._refresh_early else max(expires_in // 2, 1)
        await self._redis.set(key, token, ex=ttl)
        return token

    async def drop(self, consumer_key: str, token: str) -> None:
        """Forget `token` after Daraja refused it, unless another process already replaced it."""
        await self._redis.eval(_RELEASE, 1, self.key(consumer_key), token)  # type: ignore[misc]
