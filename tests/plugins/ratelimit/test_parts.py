"""The plugin's pure parts: client addresses, the header fields, the outage log and the settings."""

from __future__ import annotations

import logging
import re
from ipaddress import ip_network
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from pydantic import ValidationError
from werkzeug.datastructures import Headers

from kernel.settings import load_raw, plugin_table
from plugins.ratelimit.client_ip import ClientAddress
from plugins.ratelimit.headers import rate_limit_headers, retry_after, violated
from plugins.ratelimit.keys import Counter
from plugins.ratelimit.matching import PolicyTable
from plugins.ratelimit.outage import OutageLog
from plugins.ratelimit.settings import DEFAULT_POLICIES, KeyKind, Policy, RateLimitSettings
from plugins.ratelimit.window import Count, Outcome

REPO = Path(__file__).resolve().parents[3]
BEHIND_PROXIES = ClientAddress([ip_network("10.0.0.0/8"), ip_network("2001:db8::/32")])


def request(peer: str | None, *forwarded: str) -> Any:
    """What ClientAddress reads of a request: the ASGI scope's client and the headers."""
    headers = Headers([("X-Forwarded-For", value) for value in forwarded])
    return SimpleNamespace(scope={"client": (peer, 5000) if peer else None}, headers=headers)


@pytest.mark.parametrize(
    ("peer", "forwarded", "client"),
    [
        ("203.0.113.9", ["198.51.100.1"], "203.0.113.9"),  # untrusted peer: its header is ignored
        ("10.0.0.2", ["198.51.100.1"], "198.51.100.1"),
        ("10.0.0.2", ["6.6.6.6, 198.51.100.1, 10.0.0.7"], "198.51.100.1"),  # right-most untrusted, past our hops
        ("10.0.0.2", ["6.6.6.6", "198.51.100.1"], "198.51.100.1"),  # several header lines read as one list
        ("10.0.0.2", ["198.51.100.1:4711"], "198.51.100.1"),
        ("10.0.0.2", ["[2001:db9::1]:443"], "2001:db9::1"),
        ("10.0.0.2", ["198.51.100.1, junk, 10.0.0.7"], "10.0.0.7"),  # junk: stop at the last hop we trust
        ("10.0.0.2", [], "10.0.0.2"),
        ("10.0.0.2", ["10.0.0.3, 10.0.0.4"], "10.0.0.3"),  # only proxies: the farthest one
        ("2001:db8::5", ["2001:db9::9"], "2001:db9::9"),
        (None, ["198.51.100.1"], "unknown"),
    ],
)
def test_client_address(peer: str | None, forwarded: list[str], client: str) -> None:
    assert BEHIND_PROXIES(request(peer, *forwarded)) == client


def counts(*entries: tuple[Policy, int, int]) -> Outcome:
    made = [Count(Counter(policy, f"key-{index}"), count, wait) for index, (policy, count, wait) in enumerate(entries)]
    return Outcome(admitted=all(not item.exhausted for item in made), counts=made)


def test_fields_report_the_most_used_key_of_each_policy() -> None:
    auth, payments = DEFAULT_POLICIES[0], DEFAULT_POLICIES[1]
    outcome = counts((auth, 2, 30_000_000), (auth, 4, 10_500_000), (payments, 1, 59_000_001))
    assert rate_limit_headers(outcome) == {
        "RateLimit-Policy": '"auth";q=5;w=60, "payments";q=10;w=60',
        "RateLimit": '"auth";r=1;t=11, "payments";r=9;t=60',
    }


def test_retry_after_waits_for_every_exhausted_key_and_is_at_least_one_second() -> None:
    auth = DEFAULT_POLICIES[0]
    refused = counts((auth, 5, 12_000_000), (auth, 5, 40_200_000), (auth, 1, 59_000_000))
    assert retry_after(refused) == "41"
    assert violated(refused) == ["auth"]
    assert retry_after(counts((auth, 5, 1_000))) == "1"


def test_outage_log_warns_once_per_interval_and_once_on_recovery(caplog: pytest.LogCaptureFixture) -> None:
    now = [0.0]
    outage = OutageLog(every_seconds=10, clock=lambda: now[0])
    with caplog.at_level(logging.WARNING, logger="soko.ratelimit"):
        for step in range(30):  # a failure every half second for 15 s
            now[0] = step * 0.5
            outage.failed("TimeoutError", "open")
        outage.succeeded()
        outage.succeeded()
    messages = [record.getMessage() for record in caplog.records]
    assert len(messages) == 3
    assert "1 request(s)" in messages[0] and "20 request(s)" in messages[1]
    assert messages[2] == "rate limits enforced again: Redis answers (9 unreported failure(s) before)"


def test_shipped_config_equals_the_built_in_defaults() -> None:
    shipped = RateLimitSettings.model_validate(plugin_table(load_raw(REPO), "ratelimit"))
    assert shipped == RateLimitSettings()


def test_policies_match_by_method_and_path() -> None:
    table = PolicyTable(
        [*DEFAULT_POLICIES, Policy(name="any", routes=["* /hello/*"], limit=1, window_seconds=1, keys=["client_ip"])]
    )

    def names(method: str, path: str) -> list[str]:
        return [policy.name for policy in table.matching(method, path)]

    assert names("POST", "/auth/otp/verify") == ["auth"]
    assert names("GET", "/auth/otp/verify") == []
    assert names("POST", "/payments/intents") == ["payments", "payments_tenant"]
    assert names("POST", "/checkout") == ["payments", "payments_tenant"]
    assert names("POST", "/checkout/extra") == []
    assert names("HEAD", "/hello/x") == names("DELETE", "/hello/x") == ["any"]


@pytest.mark.parametrize(
    ("policy", "error"),
    [
        ({"routes": ["/auth/login"]}, "must be a method (or *) and a path glob"),
        ({"routes": ["FETCH /x"]}, "must be a method (or *) and a path glob"),
        ({"routes": ["POST auth"]}, "must start with /"),
        ({"keys": ["client_ip", "client_ip"]}, "each key may appear once"),
        ({"keys": ["cookie"]}, "Input should be"),
        ({"limit": 0}, "greater than or equal to 1"),
        ({"failure": "maybe"}, "'open' or 'closed'"),
    ],
)
def test_bad_policies_are_refused(policy: dict[str, Any], error: str) -> None:
    base = {"name": "p", "routes": ["POST /x"], "limit": 1, "window_seconds": 1, "keys": [KeyKind.CLIENT_IP]}
    with pytest.raises(ValidationError, match=re.escape(error)):
        RateLimitSettings.model_validate({"policies": [base | policy]})


def test_policy_names_are_unique() -> None:
    policy = DEFAULT_POLICIES[0].model_dump()
    with pytest.raises(ValidationError, match="repeated: auth"):
        RateLimitSettings.model_validate({"policies": [policy, policy]})
