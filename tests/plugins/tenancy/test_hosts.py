"""What a Host header claims, how domains are normalised, and what the settings accept."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from plugins.tenancy.hosts import ClaimKind, HostClaim, HostRules, normalize_domain
from plugins.tenancy.settings import TenancySettings

RULES = HostRules(base_domains=("soko.example", "localhost"), reserved_slugs=frozenset({"www", "api"}))


@pytest.mark.parametrize(
    ("host", "claim"),
    [
        ("acme.soko.example", HostClaim(ClaimKind.SLUG, "acme")),
        ("ACME.Soko.Example:8443", HostClaim(ClaimKind.SLUG, "acme")),
        ("acme.soko.example.", HostClaim(ClaimKind.SLUG, "acme")),
        ("acme-2.localhost:8000", HostClaim(ClaimKind.SLUG, "acme-2")),
        ("shop.acme.co.ke", HostClaim(ClaimKind.DOMAIN, "shop.acme.co.ke")),
        ("Shop.Acme.co.ke:443", HostClaim(ClaimKind.DOMAIN, "shop.acme.co.ke")),
        ("soko.example", None),  # the apex
        ("localhost:8000", None),
        ("www.soko.example", None),  # reserved for the platform
        ("api.localhost", None),
        ("deep.acme.soko.example", None),  # below a tenant: nothing
        ("-bad.soko.example", None),
        ("127.0.0.1:8000", None),
        ("10.0.0.12", None),
        ("[::1]:8000", None),
        ("", None),
        ("no_underscores.example", None),
        ("a" * 250 + ".com", None),
    ],
)
def test_host_claims(host: str, claim: HostClaim | None) -> None:
    assert RULES.claim(host) == claim


def test_under_base_domain() -> None:
    assert RULES.under_base_domain("soko.example")
    assert RULES.under_base_domain("x.soko.example")
    assert not RULES.under_base_domain("notsoko.example")


@pytest.mark.parametrize(
    ("text", "normalized"),
    [
        ("Shop.Example.COM.", "shop.example.com"),
        (" duka.co.ke ", "duka.co.ke"),
        ("bücher.example", "xn--bcher-kva.example"),
    ],
)
def test_domains_are_normalized(text: str, normalized: str) -> None:
    assert normalize_domain(text) == normalized


@pytest.mark.parametrize("text", ["localhost", "1.2.3.4", "exa mple.com", "-x.example", "x..example", "", "é" * 300])
def test_non_domains_are_refused(text: str) -> None:
    with pytest.raises(ValueError, match="not a domain name"):
        normalize_domain(text)


def test_settings_normalize_and_refuse() -> None:
    settings = TenancySettings(base_domains=["Soko.Example.", "localhost"], reserved_slugs=["WWW"])
    assert settings.base_domains == ["soko.example", "localhost"]
    assert settings.reserved_slugs == ["www"]
    with pytest.raises(ValidationError, match="at least 32 characters"):
        TenancySettings(admin_token="short")
    with pytest.raises(ValidationError, match="must start with /"):
        TenancySettings(exempt_routes=["healthz"])
    with pytest.raises(ValidationError, match="not a domain name"):
        TenancySettings(base_domains=["bad domain"])
    with pytest.raises(ValidationError, match="Extra inputs"):
        TenancySettings.model_validate({"base_domain": ["typo.example"]})
