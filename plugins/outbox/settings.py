"""`plugins.outbox`: the stand-in messaging channel of development and tests (config/outbox.yaml)."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, SecretStr


class OutboxSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")

    # Signs simulated inbound messages (`X-Outbox-Signature: sha256=<hex HMAC of the body>`) posted to
    # /webhooks/messaging/outbox, as a real platform signs its webhooks. Unset: every webhook is refused.
    webhook_secret: SecretStr | None = None
    # How many messages `soko outbox` and the development route show by default.
    list_limit: int = Field(default=20, ge=1, le=500)
