"""`plugins.idempotency` (config/idempotency.yaml; docs/idempotency.md explains each key)."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from kernel import check_route_pattern

_METHODS = {"POST", "PUT", "PATCH", "DELETE"}


class IdempotencySettings(BaseModel):
    model_config = ConfigDict(extra="forbid")

    # `METHOD /path-glob`: these requests must carry an Idempotency-Key.
    routes: list[str] = Field(default_factory=lambda: ["POST /checkout", "POST /payments/*", "POST /messages/*"])
    # Same key, different payload: 409 (this project's rule) or 422 (the IETF draft's).
    mismatch_status: Literal[409, 422] = 409
    # How long a finished response is replayed; the purge job deletes older records.
    retention_seconds: float = Field(default=86_400, gt=0)
    # A claim older than this belongs to a request that died with its process: another may take the key over.
    lease_seconds: float = Field(default=60, gt=0)
    # A repeat that finds its key still running waits this long for the first request to finish and answers with
    # its answer (five concurrent sends of one key: five identical answers); 0 answers 409 at once.
    wait_seconds: float = Field(default=5, ge=0, le=30)
    # Retry-After on 409 idempotency_key_in_progress (the first request outlasted wait_seconds).
    retry_after_seconds: int = Field(default=1, ge=1)
    purge_interval_seconds: float = Field(default=3600, gt=0)

    @field_validator("routes")
    @classmethod
    def _routes(cls, value: list[str]) -> list[str]:
        for route in value:
            method, _, pattern = route.partition(" ")
            if method not in _METHODS:
                raise ValueError(f"{route!r}: start with one of {', '.join(sorted(_METHODS))}, then a space")
            check_route_pattern(pattern)
        return value
