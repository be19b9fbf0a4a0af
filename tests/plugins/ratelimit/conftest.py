"""Fixtures of the ratelimit tests (shared with the security tests through the harness)."""

from tests.plugins.ratelimit.harness import edgeprobe

__all__ = ["edgeprobe"]
