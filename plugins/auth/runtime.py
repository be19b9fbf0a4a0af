"""What auth's views, middleware and commands share per kernel: settings, keys, the access-token issuer."""

from __future__ import annotations

from dataclasses import dataclass

from kernel import Kernel, MessagingChannel
from plugins.auth.keys import Keyring, keyring_for
from plugins.auth.settings import AuthSettings
from plugins.auth.tokens import AccessTokens


@dataclass(frozen=True)
class Auth:
    kernel: Kernel
    settings: AuthSettings
    keyring: Keyring
    tokens: AccessTokens

    @property
    def secure_cookies(self) -> bool:
        """Secure everywhere but development and test, which serve plain HTTP on localhost."""
        return self.kernel.https

    @property
    def session_cookie(self) -> str:
        return self.kernel.cookie_name(self.settings.session_cookie)

    @property
    def csrf_cookie(self) -> str:
        return self.kernel.cookie_name(self.settings.csrf_cookie)

    def otp_channel(self) -> MessagingChannel:
        return self.kernel.messaging[self.settings.otp_channel]


def auth_of(kernel: Kernel) -> Auth:
    """The kernel's auth runtime, built on first use (at app build time, by the middleware hook)."""
    return kernel.state("auth", _build)


def _build(kernel: Kernel) -> Auth:
    settings = kernel.settings_of("auth", AuthSettings)
    keyring = keyring_for(kernel)
    return Auth(kernel, settings, keyring, AccessTokens(keyring, settings.access_ttl_seconds))
