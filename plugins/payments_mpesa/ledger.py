"""What each idempotency key already started: Daraja takes no idempotency key, so soko keeps the record.

A retried `initiate` with the same key gets the first push's answer instead of a second PIN prompt. The record
is claimed before the call (a concurrent retry is told to come back), kept when Daraja accepted the push or the
outcome is unknown (a timeout may have sent the prompt), and dropped when Daraja definitely refused it.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

from kernel import PaymentError, PaymentErrorCode, RedisClient

_IN_FLIGHT = b"in-flight"
IN_FLIGHT_SECONDS = 120


class PushLedger:
    def __init__(self, redis: RedisClient, prefix: str, ttl: int) -> None:
        self._redis = redis
        self._prefix = prefix
        self._ttl = ttl

    def _key(self, tenant_id: str, idempotency_key: str) -> str:
        digest = hashlib.sha256(f"{tenant_id}\0{idempotency_key}".encode()).hexdigest()
        return f"{self._prefix}:payments_mpesa:push:{digest}"

    async def claim(self, tenant_id: str, idempotency_key: str) -> dict[str, Any] | None:
        """None: the caller may push now. A dict: the answer of the push this key already made."""
        key = self._key(tenant_id, idempotency_key)
        if await self._redis.set(key, _IN_FLIGHT, nx=True, ex=IN_FLIGHT_SECONDS):
            return None
        stored = await self._redis.get(key)
        if stored is None:  # expired between the two calls: try once more
            return await self.claim(tenant_id, idempotency_key)
        if stored == _IN_FLIGHT:
            raise PaymentError(
                PaymentErrorCode.UNAVAILABLE,
                "a push with this idempotency key is in flight or its outcome is unknown",
                retryable=True,
                retry_after=5,
            )
        answer: dict[str, Any] = json.loads(stored)
        return answer

    async def record(self, tenant_id: str, idempotency_key: str, answer: dict[str, Any]) -> None:
        await self._redis.set(self._key(tenant_id, idempotency_key), json.dumps(answer), ex=self._ttl)

    async def release(self, tenant_id: str, idempotency_key: str) -> None:
        await self._redis.delete(self._key(tenant_id, idempotency_key))
