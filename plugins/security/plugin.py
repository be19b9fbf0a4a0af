"""The security plugin's table of contents: every hook it implements, each handing off to a module of its own."""

from __future__ import annotations

from kernel import Kernel, RequestMiddleware, hookimpl
from plugins.security.cors import Cors
from plugins.security.csrf import CsrfCheck
from plugins.security.headers import SecurityHeaders
from plugins.security.middleware import SecurityMiddleware
from plugins.security.settings import SecuritySettings
from plugins.security.storefronts import storefront_lookup


@hookimpl
def settings_model() -> type[SecuritySettings]:
    return SecuritySettings


@hookimpl
def register_middleware(kernel: Kernel) -> list[RequestMiddleware]:
    settings = kernel.settings_of("security", SecuritySettings)
    cors = Cors(settings.cors, storefront_lookup(kernel))
    return [SecurityMiddleware(SecurityHeaders(settings), cors, CsrfCheck(settings.csrf, kernel, cors))]
