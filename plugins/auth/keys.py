"""The secrets auth needs, from settings, with a fixed stand-in in development and tests only.

Without one in development and tests, `soko dev` and the test suite would each need secrets set up by hand; the
stand-ins are public (they are in this file), so any other environment refuses to start without real ones.
"""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass

from kernel import Kernel, SettingsError
from plugins.auth.settings import AuthSettings

RELAXED_ENVS = frozenset({"development", "test"})
_STAND_IN_KID = "dev"
_STAND_IN_KEY = b"soko-development-and-test-only-signing-key-never-in-production"
_STAND_IN_PEPPER = b"soko-development-and-test-only-otp-pepper-never-in-production"


@dataclass(frozen=True)
class Keyring:
    """Verification keys by `kid`, the signing one, and the OTP pepper."""

    keys: dict[str, bytes]
    signing_kid: str
    pepper: bytes

    @property
    def signing_key(self) -> bytes:
        return self.keys[self.signing_kid]

    @property
    def csrf_key(self) -> bytes:
        """The key of the staff panel's CSRF tokens, derived from the pepper (no further secret to set)."""
        return hmac.new(self.pepper, b"soko csrf token v1", hashlib.sha256).digest()


def keyring_for(kernel: Kernel) -> Keyring:
    """The keyring of this deployment; raises `SettingsError` naming each missing secret outside dev and test."""
    settings = kernel.settings_of("auth", AuthSettings)
    relaxed = kernel.settings.env in RELAXED_ENVS
    problems = []
    if not settings.signing_keys and not relaxed:
        problems.append(
            "plugins.auth.signing_keys: required; set the environment variable SOKO_PLUGINS__AUTH__SIGNING_KEYS"
        )
    if settings.pepper is None and not relaxed:
        problems.append("plugins.auth.pepper: required; set the environment variable SOKO_PLUGINS__AUTH__PEPPER")
    if problems:
        raise SettingsError(problems)
    if settings.signing_keys:
        keys = {kid: key.get_secret_value().encode() for kid, key in settings.signing_keys.items()}
        signing_kid = str(settings.signing_kid)
    else:
        keys, signing_kid = {_STAND_IN_KID: _STAND_IN_KEY}, _STAND_IN_KID
    pepper = settings.pepper.get_secret_value().encode() if settings.pepper is not None else _STAND_IN_PEPPER
    return Keyring(keys, signing_kid, pepper)
