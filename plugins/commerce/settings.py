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
    # The most of one product a cart line may hold, however many adds it took (one add asks for at most 10,000).
    # With the largest price a product may have (10^12 minor units) a line stays far inside PostgreSQL's bigint.
    max_line_quantity: int = Field(default=10_000, ge=1, le=1_000_000)
    # The largest total, in minor units, a cart may reach and an order be opened for (default 10^15); a change that
    # would pass it is a 409 `order_total_exceeded`. Must stay below bigint's 9.2 * 10^18.
    max_order_total_minor: int = Field(default=10**15, ge=1, le=10**18)
