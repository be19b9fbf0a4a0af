"""`plugins.messaging_whatsapp` (config/messaging_whatsapp.yaml; docs/messaging_whatsapp.md explains each key).

Secrets come from the environment only: `SOKO_PLUGINS__MESSAGING_WHATSAPP__APP_SECRET` (signs Meta's webhooks)
and `SOKO_PLUGINS__MESSAGING_WHATSAPP__VERIFY_TOKEN` (the GET subscription check). A shop's phone number id,
WABA id and access token are per tenant, in the kernel's credential store: `soko credentials set TENANT whatsapp`.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, model_validator

CLOUD_URL = "https://graph.facebook.com"
SIMULATOR_URL = "http://127.0.0.1:8790"
Purpose = Literal["otp", "receipt"]


class PurposeTemplate(BaseModel):
    """The pre-approved template a message of one purpose is sent as when free text may not (or must not) go."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=512, pattern=r"^[a-z0-9_]+$")
    language: str = Field(default="en", min_length=2, max_length=15)
    # Authentication templates (sign-in codes) carry the code twice: in the body and in the copy-code button.
    authentication: bool = False
    # `outside_window`: free text inside the 24-hour window, the template outside it. `always`: the template only
    # (Meta requires authentication templates for sign-in codes).
    use: Literal["always", "outside_window"] = "outside_window"


class WhatsAppSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")

    mode: Literal["cloud", "simulator"] = "cloud"
    # The Graph API's address; unset: Meta's in cloud mode, the simulator's default in simulator mode.
    base_url: str | None = Field(default=None, pattern=r"^https?://[^/\s]+$")
    api_version: str = Field(default="v21.0", pattern=r"^v[0-9]+\.[0-9]+$")
    app_secret: SecretStr | None = None
    verify_token: SecretStr | None = None
    timeout_seconds: float = Field(default=10.0, gt=0, le=60)
    max_connections: int = Field(default=50, ge=1, le=1000)
    # Meta's per-number throughput (80 messages/s by default), shared by every process through Redis.
    send_rate_per_second: int = Field(default=80, ge=1, le=1000)
    # About one message per 6 s to the same customer before 131056 (pair rate limit).
    pair_interval_seconds: float = Field(default=6.0, ge=0, le=60)
    max_attempts: int = Field(default=8, ge=1, le=50)
    backoff_base_seconds: float = Field(default=2.0, gt=0, le=600)
    backoff_max_seconds: float = Field(default=600.0, gt=0, le=86_400)
    # A send job holds its message this long; a worker that died mid-send leaves it to the sweep after that.
    lease_seconds: float = Field(default=60.0, ge=1, le=3600)
    # How often every tenant's due retries and abandoned sends are picked up.
    sweep_interval_seconds: float = Field(default=5.0, ge=0.2, le=3600)
    service_window_hours: float = Field(default=24.0, gt=0, le=24)
    templates: dict[Purpose, PurposeTemplate] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _backoff_bounds(self) -> WhatsAppSettings:
        if self.backoff_max_seconds < self.backoff_base_seconds:
            raise ValueError("backoff_max_seconds must be at least backoff_base_seconds")
        return self

    def template_for(self, purpose: str | None) -> PurposeTemplate | None:
        """The template configured for a message's purpose, if any."""
        return next((template for name, template in self.templates.items() if name == purpose), None)

    @property
    def graph_url(self) -> str:
        default = SIMULATOR_URL if self.mode == "simulator" else CLOUD_URL
        return f"{self.base_url or default}/{self.api_version}"
