"""What auth needs of the built kernel: the messaging channel that delivers sign-in codes.

Checked while the kernel is built (the `check_kernel` hook), not when it starts: `soko config check` then names
the setting to fix, instead of every command dying at startup while the check said the settings were valid.
"""

from __future__ import annotations

from kernel import Kernel
from plugins.auth.settings import AuthSettings


def problems(kernel: Kernel) -> list[str]:
    """`plugins.auth.otp_channel` must name an enabled messaging channel, or no customer could sign in."""
    channel = kernel.settings_of("auth", AuthSettings).otp_channel
    if channel in kernel.messaging:
        return []
    enabled = ", ".join(sorted(kernel.messaging)) or "none"
    return [
        f"plugins.auth.otp_channel: {channel!r} is no enabled messaging channel (enabled: {enabled}), so no "
        f"customer could sign in; enable the plugin that provides it, or set otp_channel in config/auth.yaml "
        f"or SOKO_PLUGINS__AUTH__OTP_CHANNEL"
    ]
