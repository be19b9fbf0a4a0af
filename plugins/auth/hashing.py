"""How secrets are stored: never as given, and always compared in constant time.

- Passwords: argon2id (memory-hard), the only KDF here that slows an offline guesser down meaningfully.
- Random tokens (refresh, session): SHA-256. They carry 256 bits of entropy, so a fast hash cannot be reversed;
  the database holds only the hash, and a lookup by hash takes the place of a comparison.
- OTP codes: HMAC-SHA256 keyed with the server's pepper. A 6-digit code has only 10^6 values, so no hash of it
  resists an offline search; the pepper lives outside the database, so a copy of the table alone cannot be
  searched at all, and online guessing is what the attempt limit, the 5-minute life and the rate limit bound.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

_PASSWORDS = PasswordHasher()  # argon2id, RFC 9106's second recommended parameters (64 MiB, t=3, p=4)
# Verified for unknown e-mail addresses, so they take as long as known ones.
_DECOY = _PASSWORDS.hash(secrets.token_urlsafe(16))


def new_token() -> str:
    """A fresh 256-bit URL-safe token for refresh tokens, sessions and CSRF cookies."""
    return secrets.token_urlsafe(32)


def token_digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def new_code() -> str:
    return f"{secrets.randbelow(10**6):06d}"


def code_digest(pepper: bytes, tenant_id: str, phone: str, code: str) -> str:
    """Bound to tenant and phone, so a stored hash is worth nothing for another number or store."""
    return hmac.new(pepper, f"{tenant_id}\x00{phone}\x00{code}".encode(), hashlib.sha256).hexdigest()


def same(left: str, right: str) -> bool:
    return hmac.compare_digest(left.encode(), right.encode())


def hash_password(password: str) -> str:
    return _PASSWORDS.hash(password)


def password_matches(stored: str | None, password: str) -> bool:
    """argon2's verify (constant-time); with no stored hash, a decoy is verified so timing says nothing."""
    try:
        return _PASSWORDS.verify(stored or _DECOY, password) and stored is not None
    except (VerificationError, InvalidHashError):
        return False


def needs_rehash(stored: str) -> bool:
    return _PASSWORDS.check_needs_rehash(stored)
