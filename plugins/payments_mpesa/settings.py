"""`plugins.payments_mpesa` (config/payments_mpesa.yaml) and one shop's Daraja credentials (the credential store).

Settings say where Daraja is and how long to wait for it; everything that belongs to a shop (keys, shortcode,
passkey) lives encrypted in the kernel's credential store, so a new shop needs no redeploy.
"""

from __future__ import annotations

from enum import StrEnum
from ipaddress import IPv4Network, IPv6Network
from typing import Literal

from pydantic import AnyHttpUrl, BaseModel, ConfigDict, Field, SecretStr

SANDBOX_URL = "https://sandbox.safaricom.co.ke"
PRODUCTION_URL = "https://api.safaricom.co.ke"

# The callback addresses Safaricom publishes (anchors §2.7); they change now and then, so the list is a setting.
SAFARICOM_NETWORKS = [
    "196.201.214.200/32",
    "196.201.214.206/32",
    "196.201.214.207/32",
    "196.201.214.208/32",
    "196.201.213.114/32",
    "196.201.213.44/32",
    "196.201.212.127/32",
    "196.201.212.138/32",
    "196.201.212.129/32",
    "196.201.212.136/32",
    "196.201.212.74/32",
    "196.201.212.69/32",
]


class Mode(StrEnum):
    SANDBOX = "sandbox"
    PRODUCTION = "production"
    SIMULATOR = "simulator"  # the Daraja simulator that ships with soko (plugins.payments_mpesa.simulator)


class MpesaSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")

    # Simulator by default: enabling the plugin never touches real money until an operator says so, and
    # production refuses it, so a production deployment must choose its mode.
    mode: Mode = Mode.SIMULATOR
    # Overrides the mode's Daraja URL (a proxy, or a simulator elsewhere). Unset: the mode's own.
    base_url: AnyHttpUrl | None = None
    # The public URL soko is reached at; CallBackURL is this plus the tenant's webhook path. Required outside
    # simulator mode, where it defaults to `http://<bind>`.
    callback_base_url: AnyHttpUrl | None = None
    # Seconds an STK push waits for its callback before reconciliation asks Daraja (STK Query).
    reconcile_after: int = Field(default=120, ge=5, le=86_400)
    # Timeouts of every Daraja call, in seconds.
    connect_timeout: float = Field(default=5.0, gt=0, le=60)
    read_timeout: float = Field(default=30.0, gt=0, le=120)
    # The OAuth token is used until this many seconds before Daraja says it expires (expires_in 3599).
    token_refresh_early: int = Field(default=300, ge=0, le=3_000)
    # How long a process waits for another one's token fetch before giving up with `unavailable`.
    token_wait: float = Field(default=15.0, gt=0, le=120)
    # How long a retried `initiate` with the same idempotency key returns the first push's result.
    idempotency_ttl: int = Field(default=86_400, ge=600, le=7 * 86_400)
    # Refuse callbacks whose client address is outside `allowed_networks` (behind a proxy, configure the
    # trusted proxies so the client address is Safaricom's, not the proxy's).
    ip_allowlist: bool = False
    allowed_networks: list[IPv4Network | IPv6Network] = Field(
        default_factory=lambda: [IPv4Network(network) for network in SAFARICOM_NETWORKS]
    )
    # The simulator `soko dev` starts in simulator mode, and the port it listens on (127.0.0.1).
    simulator_port: int = Field(default=8089, ge=1024, le=65_535)

    def daraja_url(self) -> str:
        """Where Daraja is for this mode, unless `base_url` says otherwise."""
        if self.base_url is not None:
            return str(self.base_url).rstrip("/")
        if self.mode is Mode.SIMULATOR:
            return f"http://127.0.0.1:{self.simulator_port}"
        return PRODUCTION_URL if self.mode is Mode.PRODUCTION else SANDBOX_URL


def startup_problems(settings: MpesaSettings, env: str) -> list[str]:
    """What makes these settings unsafe to run with in `env`, checked before anything starts."""
    problems = []
    if settings.mode is Mode.SIMULATOR and env == "production":
        problems.append("plugins.payments_mpesa.mode: the simulator pays every order for free; never in production")
    if settings.mode is not Mode.SIMULATOR and settings.callback_base_url is None:
        problems.append(f"plugins.payments_mpesa.callback_base_url: required in {settings.mode} mode (Daraja calls it)")
    return problems


class MpesaCredentials(BaseModel):
    """One shop's Daraja app and till: `soko credentials set TENANT mpesa` reads these as JSON."""

    model_config = ConfigDict(extra="forbid")

    consumer_key: SecretStr = Field(min_length=1)
    consumer_secret: SecretStr = Field(min_length=1)
    # The paybill, or the store number of a till; routes C2B payments to the shop without decrypting anything.
    shortcode: str = Field(pattern=r"^\d{5,7}$", json_schema_extra={"routing_key": True})
    passkey: SecretStr = Field(min_length=1)
    transaction_type: Literal["CustomerPayBillOnline", "CustomerBuyGoodsOnline"] = "CustomerPayBillOnline"
    # The till number that receives a Buy Goods payment when it differs from `shortcode`; unset: `shortcode`.
    party_b: str | None = Field(default=None, pattern=r"^\d{5,7}$")

    @property
    def receiver(self) -> str:
        return self.party_b or self.shortcode
