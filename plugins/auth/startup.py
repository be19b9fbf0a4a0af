"""Auth's lifespan: refuse to start when the channel that delivers sign-in codes is not enabled."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from kernel import Kernel
from plugins.auth.runtime import auth_of


class MissingChannel(RuntimeError):
    """`plugins.auth.otp_channel` names no enabled messaging channel: no customer could sign in."""


@asynccontextmanager
async def lifespan(kernel: Kernel) -> AsyncIterator[None]:
    channel = auth_of(kernel).settings.otp_channel
    if channel not in kernel.messaging:
        enabled = ", ".join(sorted(kernel.messaging)) or "none"
        raise MissingChannel(
            f"plugins.auth.otp_channel is {channel!r}, but no enabled plugin provides that messaging channel "
            f"(enabled: {enabled}); enable it or change config/auth.yaml"
        )
    yield
