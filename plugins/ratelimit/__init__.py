"""The ratelimit plugin: sliding-window limits in Redis, per client IP, phone, e-mail, cart, tenant or provider.

Nothing here is public to other plugins; integrators configure it in config/ratelimit.yaml (docs/ratelimit.md).
"""
