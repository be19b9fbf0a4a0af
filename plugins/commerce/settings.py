"""`plugins.commerce` (config/commerce.yaml; docs/commerce.md explains each key)."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


class CommerceSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")

    # ISO 4217 code of products created without one.
    default_currency: str = Field(default="KES", pattern=r"^[A-Z]{3}$")
    # How long a checkout holds its stock before an unpaid order expires.
    reservation_ttl_seconds: float = Field(default=900, gt=0)
    # How often expired reservations are looked for (one job per tenant per period, across all processes).
    expiry_interval_seconds: float = Field(default=30, gt=0)
