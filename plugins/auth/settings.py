"""`plugins.auth`: tokens, codes, sessions (config/auth.yaml; docs/auth.md explains each key).

Secrets (`signing_keys`, `pepper`) come from the environment only, e.g.
`SOKO_PLUGINS__AUTH__SIGNING_KEYS='{k2 = "...", k1 = "..."}'` and `SOKO_PLUGINS__AUTH__SIGNING_KID=k2`.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator, model_validator

from kernel import check_route_pattern

_COOKIE = r"^[A-Za-z0-9!#$%&'*+.^_`|~-]+$"
MIN_SECRET_CHARS = 32


class AuthSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")

    # Every key that verifies access tokens, by key id (the JWT `kid`); `signing_kid` names the one that signs.
    # Rotate by adding a new key, switching `signing_kid` to it, and dropping the old one after `access_ttl_seconds`.
    signing_keys: dict[str, SecretStr] = Field(default_factory=dict)
    signing_kid: str | None = None
    # The server-side secret mixed into stored OTP hashes, so a copy of the database alone cannot test codes.
    pepper: SecretStr | None = None
    access_ttl_seconds: int = Field(default=900, ge=60, le=3600)
    refresh_ttl_seconds: int = Field(default=30 * 86_400, ge=3600)
    otp_ttl_seconds: int = Field(default=300, ge=60, le=900)
    otp_max_attempts: int = Field(default=5, ge=1, le=10)
    # The messaging channel that delivers codes (`outbox` in development and tests, later `whatsapp`).
    otp_channel: str = "outbox"
    session_ttl_seconds: int = Field(default=12 * 3600, ge=300)
    # Keep these equal to plugins.security.csrf.session_cookie / token_cookie; outside development and test both
    # get the `__Host-` prefix (docs/security.md).
    session_cookie: str = Field(default="soko_session", pattern=_COOKIE)
    csrf_cookie: str = Field(default="soko_csrf", pattern=_COOKIE)
    # The header the panel repeats the CSRF token in (keep equal to plugins.security.csrf.header).
    csrf_header: str = Field(default="X-CSRF-Token", pattern=_COOKIE)
    # Routes only staff of the request's tenant may call, whichever plugin serves them.
    admin_routes: list[str] = Field(default_factory=lambda: ["/admin/*"])

    @field_validator("signing_keys")
    @classmethod
    def _strong_keys(cls, value: dict[str, SecretStr]) -> dict[str, SecretStr]:
        for kid, key in value.items():
            if len(key.get_secret_value()) < MIN_SECRET_CHARS:
                raise ValueError(f"key {kid!r} must be at least {MIN_SECRET_CHARS} characters (`openssl rand -hex 32`)")
        return value

    @field_validator("pepper")
    @classmethod
    def _strong_pepper(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None and len(value.get_secret_value()) < MIN_SECRET_CHARS:
            raise ValueError(f"must be at least {MIN_SECRET_CHARS} characters (`openssl rand -hex 32`)")
        return value

    @field_validator("admin_routes")
    @classmethod
    def _routes(cls, value: list[str]) -> list[str]:
        return [check_route_pattern(pattern) for pattern in value]

    @model_validator(mode="after")
    def _signing_key_known(self) -> AuthSettings:
        if self.signing_keys and self.signing_kid not in self.signing_keys:
            raise ValueError(f"signing_kid must name one of signing_keys ({', '.join(sorted(self.signing_keys))})")
        return self
