"""Access tokens: short-lived HS256 JWTs naming user, tenant and role, signed with the current key.

Verification picks the key by the `kid` header among every configured key (rotation), allows HS256 only (no
`none`, no algorithm confusion), requires every claim, and refuses a token of another tenant. PyJWT compares
signatures with `hmac.compare_digest`.
"""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass

import jwt

from plugins.auth.keys import Keyring
from plugins.auth.principal import Principal, Role

ALGORITHM = "HS256"
TYPE = "access"
REQUIRED = ["sub", "tenant", "role", "iat", "exp", "jti", "typ"]
LEEWAY_SECONDS = 5


class InvalidToken(Exception):
    """Forged, tampered, expired, of another tenant, or malformed: the client learns only that it is refused."""


@dataclass(frozen=True)
class AccessTokens:
    keyring: Keyring
    ttl_seconds: int

    def issue(self, user_id: str, tenant_id: str, role: Role) -> str:
        now = int(time.time())
        claims = {
            "sub": user_id,
            "tenant": tenant_id,
            "role": role.value,
            "iat": now,
            "exp": now + self.ttl_seconds,
            "jti": uuid.uuid4().hex,
            "typ": TYPE,
        }
        headers = {"kid": self.keyring.signing_kid}
        return jwt.encode(claims, self.keyring.signing_key, algorithm=ALGORITHM, headers=headers)

    def verify(self, token: str, tenant_id: str) -> Principal:
        try:
            key = self.keyring.keys.get(str(jwt.get_unverified_header(token).get("kid")))
            if key is None:
                raise InvalidToken("unknown key id")
            claims = jwt.decode(
                token, key, algorithms=[ALGORITHM], leeway=LEEWAY_SECONDS, options={"require": REQUIRED}
            )
            role = Role(claims["role"])
        except (jwt.PyJWTError, ValueError) as error:
            raise InvalidToken(type(error).__name__) from None
        if claims["typ"] != TYPE or claims["tenant"] != tenant_id:
            raise InvalidToken("wrong type or tenant")
        return Principal(user_id=str(claims["sub"]), tenant_id=tenant_id, role=role)
