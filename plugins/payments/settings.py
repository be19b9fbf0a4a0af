"""`plugins.payments` (config/payments.yaml; docs/payments.md explains each key)."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


class PaymentsSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")

    # A failed payment (declined, cancelled on the phone, wrong PIN, no answer) expires its order at once and
    # gives the stock back; false: the order keeps its reservation until it expires, for another try.
    release_stock_on_failure: bool = True
    # How often reconciliation looks at each shop's open intents (one job per tenant per period, all processes).
    reconcile_interval_seconds: float = Field(default=30, gt=0, le=3_600)
    # An intent still `created` this long after its last push attempt is pushed again (its job was lost).
    push_retry_after_seconds: float = Field(default=30, gt=0, le=3_600)
    # Push attempts the provider may answer "try again later" to before the intent fails.
    max_push_attempts: int = Field(default=5, ge=1, le=50)
