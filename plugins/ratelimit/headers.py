"""The RateLimit and RateLimit-Policy fields of draft-ietf-httpapi-ratelimit-headers, and Retry-After.

Both fields are Structured Field lists with one item per matched policy, named by a String:

    RateLimit-Policy: "auth";q=5;w=60
    RateLimit: "auth";r=0;t=42

`q` is the policy's limit, `w` its window in seconds. A policy counts several keys (IP and phone); `r` is the
remaining quota of the most used one, and `t` the whole seconds until that key can take one more request. No
partition key (`pk`) is sent: it would tell a client which of its values (its phone number) is being counted.
"""

from __future__ import annotations

import math

from plugins.ratelimit.window import MICROSECONDS, Count, Outcome


def rate_limit_headers(outcome: Outcome) -> dict[str, str]:
    binding: dict[str, Count] = {}
    for count in outcome.counts:
        current = binding.get(count.counter.policy.name)
        if current is None or (count.remaining, -count.wait_us) < (current.remaining, -current.wait_us):
            binding[count.counter.policy.name] = count
    policies = ", ".join(
        f'"{name}";q={count.counter.policy.limit};w={count.counter.policy.window_seconds}'
        for name, count in binding.items()
    )
    limits = ", ".join(f'"{name}";r={count.remaining};t={_seconds(count.wait_us)}' for name, count in binding.items())
    return {"RateLimit-Policy": policies, "RateLimit": limits}


def retry_after(outcome: Outcome) -> str:
    """Whole seconds until every exhausted key takes a request again; at least 1, never before any `t`."""
    return str(max([1, *(_seconds(count.wait_us) for count in outcome.counts if count.exhausted)]))


def violated(outcome: Outcome) -> list[str]:
    return sorted({count.counter.policy.name for count in outcome.counts if count.exhausted})


def _seconds(microseconds: int) -> int:
    return math.ceil(microseconds / MICROSECONDS)
