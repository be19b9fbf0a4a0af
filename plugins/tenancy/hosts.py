"""What a Host header claims: a tenant's slug under a base domain, a custom domain, or no tenant at all.

Pure string work, run once per distinct Host value (the result is cached with the tenant it leads to).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import Enum

_LABEL = r"[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?"
SLUG = re.compile(_LABEL)
_DOMAIN = re.compile(rf"(?:{_LABEL}\.)+[a-z0-9-]{{2,63}}")
_SINGLE_LABEL = re.compile(_LABEL)
_IPV4 = re.compile(r"[0-9.]+")


class ClaimKind(Enum):
    SLUG = "slug"
    DOMAIN = "domain"


@dataclass(frozen=True, slots=True)
class HostClaim:
    """The tenant a host names: by slug (`acme.soko.app`) or by custom domain (`shop.acme.co.ke`)."""

    kind: ClaimKind
    value: str


def normalize_domain(text: str, *, allow_single_label: bool = False) -> str:
    """A domain as stored and compared: lower case ASCII (IDNA), no trailing dot; ValueError if it is not one."""
    domain = text.strip().rstrip(".").lower()
    try:
        domain = domain.encode("idna").decode("ascii")
    except UnicodeError:
        raise ValueError(f"{text!r} is not a domain name") from None
    pattern = _SINGLE_LABEL if allow_single_label and "." not in domain else _DOMAIN
    if len(domain) > 253 or not pattern.fullmatch(domain) or _IPV4.fullmatch(domain):
        raise ValueError(f"{text!r} is not a domain name")
    return domain


@dataclass(frozen=True)
class HostRules:
    """Base domains and reserved labels, from the settings."""

    base_domains: tuple[str, ...]
    reserved_slugs: frozenset[str]

    def claim(self, host: str) -> HostClaim | None:
        """The tenant `host` (a Host header, port allowed) names, or None when it names none.

        None for an IP address, a base domain itself, a reserved or malformed label under a base domain, and a
        deeper subdomain of one; such hosts never reach the database.
        """
        name = host.strip().lower()
        if name.startswith("["):  # an IPv6 literal
            return None
        name = name.partition(":")[0].rstrip(".")
        for base in self.base_domains:
            if name.endswith(f".{base}"):
                label = name[: -len(base) - 1]
                if label in self.reserved_slugs or not SLUG.fullmatch(label):
                    return None
                return HostClaim(ClaimKind.SLUG, label)
            if name == base:
                return None
        if not _DOMAIN.fullmatch(name) or _IPV4.fullmatch(name) or len(name) > 253:
            return None
        return HostClaim(ClaimKind.DOMAIN, name)

    def under_base_domain(self, domain: str) -> bool:
        """Whether `domain` is a base domain or below one: such hosts are slugs, never custom domains."""
        return any(domain == base or domain.endswith(f".{base}") for base in self.base_domains)
