"""The security tests serve the same probe plugin as the ratelimit tests."""

from tests.plugins.ratelimit.harness import edgeprobe

__all__ = ["edgeprobe"]
