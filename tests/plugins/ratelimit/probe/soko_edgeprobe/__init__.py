"""soko-edgeprobe: routes for the ratelimit and security tests."""
