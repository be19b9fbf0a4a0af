"""The credential store: each shop's provider and channel settings and secrets, encrypted, one row per receiver.

A receiver declares `credentials_model` (pydantic; `SecretStr` fields are the secrets). Rows live in the
tenant-owned `credentials` table under row-level security, encrypted with AES-256-GCM under a key named by id
(`credentials_keys`), with the tenant and receiver as associated data: a ciphertext copied to another tenant's
row, or to another receiver, fails to decrypt instead of handing one shop's secrets to another. One field may be
the receiver's routing key (`json_schema_extra={"routing_key": True}`); its value is also kept in clear in the
kernel's webhook routes, so `tenant_for` answers without decrypting anything.
"""

from __future__ import annotations

import base64
import binascii
import json
import os
import uuid
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, Any

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from pydantic import BaseModel, SecretStr

from kernel.context import tenant_id_var
from kernel.local_secrets import local_secret

if TYPE_CHECKING:
    import asyncpg

    from kernel.kernel import Kernel

ROUTE_KIND = "credentials"
LOCAL_KEY_ID = "local"


class CredentialsError(RuntimeError):
    """A credential operation cannot be done; the message says what to fix, and never holds a secret."""


class UnknownReceiver(CredentialsError):
    """No enabled provider or channel has that name, or it takes no credentials."""


class Keyring:
    """The AES-GCM keys by id, and the id of the one that encrypts."""

    def __init__(self, keys: Mapping[str, bytes], current: str) -> None:
        if current not in keys:
            raise CredentialsError(f"credentials_key_id {current!r} is not among credentials_keys")
        self._ciphers = {key_id: AESGCM(key) for key_id, key in keys.items()}
        self.current = current

    def encrypt(self, plaintext: bytes, aad: bytes) -> tuple[str, bytes, bytes]:
        nonce = os.urandom(12)  # 96 random bits per message; far below the birthday bound for one key's writes
        return self.current, nonce, self._ciphers[self.current].encrypt(nonce, plaintext, aad)

    def decrypt(self, key_id: str, nonce: bytes, ciphertext: bytes, aad: bytes) -> bytes:
        cipher = self._ciphers.get(key_id)
        if cipher is None:
            raise CredentialsError(f"credentials were encrypted with key {key_id!r}, which is not configured")
        try:
            return cipher.decrypt(nonce, ciphertext, aad)
        except InvalidTag:
            raise CredentialsError(
                "stored credentials do not belong to this tenant and receiver, or were altered"
            ) from None


def keyring_from(kernel: Kernel) -> Keyring:
    """The configured keys, else (development and test only) one generated under ./var."""
    configured = kernel.settings.credentials_keys
    if not configured:
        return Keyring(
            {LOCAL_KEY_ID: local_secret(kernel.settings, "credentials.key", setting="credentials_keys")}, LOCAL_KEY_ID
        )
    keys = {key_id: _decode_key(key_id, value.get_secret_value()) for key_id, value in configured.items()}
    return Keyring(keys, kernel.settings.credentials_key_id or list(keys)[-1])


def _decode_key(key_id: str, text: str) -> bytes:
    try:
        key = base64.b64decode(text.replace("-", "+").replace("_", "/") + "=" * (-len(text) % 4), validate=True)
    except (binascii.Error, ValueError):
        key = b""
    if len(key) != 32:
        raise CredentialsError(f"credentials_keys.{key_id} must be base64 of 32 bytes (`openssl rand -base64 32`)")
    return key


def routing_field(model: type[BaseModel]) -> str | None:
    """The field marked `json_schema_extra={"routing_key": True}`, if any."""
    for name, info in model.model_fields.items():
        extra = info.json_schema_extra
        if isinstance(extra, dict) and extra.get("routing_key") is True:
            return name
    return None


def masked(credentials: BaseModel) -> dict[str, Any]:
    """What may be shown: every field, secrets as `**********` (pydantic's JSON form of a `SecretStr`)."""
    return credentials.model_dump(mode="json")


def _revealed(value: Any) -> Any:
    if isinstance(value, SecretStr):
        return value.get_secret_value()
    if isinstance(value, dict):
        return {key: _revealed(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_revealed(item) for item in value]
    return value


def _aad(tenant_id: str, name: str) -> bytes:
    return f"soko-credentials\x00{tenant_id}\x00{name}".encode()


def _tenant(tenant_id: str) -> str:
    try:
        return str(uuid.UUID(str(tenant_id)))
    except ValueError:
        raise CredentialsError(f"{tenant_id!r} is not a tenant id") from None


class CredentialStore:
    """`kernel.credentials`: get, put, route and rotate per-tenant receiver credentials."""

    def __init__(self, kernel: Kernel) -> None:
        self._kernel = kernel
        self._keyring: Keyring | None = None

    @property
    def keyring(self) -> Keyring:
        if self._keyring is None:
            self._keyring = keyring_from(self._kernel)
        return self._keyring

    def model_for(self, name: str) -> type[BaseModel]:
        """The receiver's `credentials_model`; a clear error for an unknown receiver or one that takes none."""
        receiver = self._kernel.payments.get(name) or self._kernel.messaging.get(name)
        if receiver is None:
            known = sorted(self._kernel.payments | self._kernel.messaging)
            raise UnknownReceiver(
                f"no payment provider or messaging channel is called {name!r} (enabled: {', '.join(known) or 'none'})"
            )
        if receiver.credentials_model is None:
            raise UnknownReceiver(f"{name!r} takes no per-shop credentials")
        return receiver.credentials_model

    async def get(self, tenant_id: str, name: str) -> BaseModel | None:
        """The tenant's validated credentials for receiver `name`, or None when the shop has none."""
        model = self.model_for(name)
        tenant = _tenant(tenant_id)
        async with self._scope(tenant) as connection:
            row = await connection.fetchrow(
                "SELECT key_id, nonce, ciphertext FROM credentials WHERE receiver = $1", name
            )
        if row is None:
            return None
        plaintext = self.keyring.decrypt(row["key_id"], row["nonce"], row["ciphertext"], _aad(tenant, name))
        return model.model_validate(json.loads(plaintext))

    async def put(self, tenant_id: str, name: str, values: Mapping[str, Any]) -> BaseModel:
        """Validate `values` with the receiver's model, store them encrypted and route the routing key."""
        model = self.model_for(name)
        credentials = model.model_validate(dict(values))
        tenant = _tenant(tenant_id)
        plaintext = json.dumps(_revealed(credentials.model_dump()), default=str).encode()
        key_id, nonce, ciphertext = self.keyring.encrypt(plaintext, _aad(tenant, name))
        routing = routing_field(model)
        async with self._scope(tenant) as connection:
            await connection.execute(
                "INSERT INTO credentials (receiver, key_id, nonce, ciphertext) VALUES ($1, $2, $3, $4) "
                "ON CONFLICT (tenant_id, receiver) DO UPDATE SET key_id = EXCLUDED.key_id, nonce = EXCLUDED.nonce, "
                "ciphertext = EXCLUDED.ciphertext, updated_at = now()",
                name,
                key_id,
                nonce,
                ciphertext,
            )
            key = "" if routing is None else str(getattr(credentials, routing) or "")
            await self._kernel.webhook_routes.claim(name, ROUTE_KIND, key, exclusive=True)
        return credentials

    async def tenant_for(self, name: str, routing_key: str) -> str | None:
        """The one tenant whose credentials for `name` carry `routing_key`, or None."""
        return await self._kernel.webhook_routes.tenant_for(name, ROUTE_KIND, routing_key)

    async def rotate(self) -> int:
        """Re-encrypt every row not under the current key with it; returns how many rows changed.

        A row no configured key opens is left as it is and named in the error raised once all others are done,
        so an operator never drops an old key while something still needs it.
        """
        changed, unreadable = 0, []
        for tenant, name in await self._kernel.webhook_routes.holders(ROUTE_KIND):
            try:
                changed += await self._reencrypt(tenant, name)
            except CredentialsError:
                unreadable.append(f"{tenant}/{name}")
        if unreadable:
            raise CredentialsError(
                f"re-encrypted {changed} row(s), but no configured key opens {len(unreadable)}: "
                f"{', '.join(unreadable)}; keep their key in credentials_keys"
            )
        return changed

    async def _reencrypt(self, tenant: str, name: str) -> int:
        async with self._scope(tenant) as connection:
            row = await connection.fetchrow(
                "SELECT key_id, nonce, ciphertext FROM credentials WHERE receiver = $1 FOR UPDATE", name
            )
            if row is None or row["key_id"] == self.keyring.current:
                return 0
            aad = _aad(tenant, name)
            plaintext = self.keyring.decrypt(row["key_id"], row["nonce"], row["ciphertext"], aad)
            key_id, nonce, ciphertext = self.keyring.encrypt(plaintext, aad)
            await connection.execute(
                "UPDATE credentials SET key_id = $2, nonce = $3, ciphertext = $4, updated_at = now() "
                "WHERE receiver = $1",
                name,
                key_id,
                nonce,
                ciphertext,
            )
            return 1

    @asynccontextmanager
    async def _scope(self, tenant: str) -> AsyncIterator[asyncpg.Connection]:
        """The open transaction when it is this tenant's, else a short one of our own (never another tenant's)."""
        if self._kernel.in_transaction():
            if tenant_id_var.get() != tenant:
                raise CredentialsError("a transaction of another tenant is open; read credentials outside it")
            yield self._kernel.connection()
            return
        async with self._kernel.tenant_transaction(tenant):
            yield self._kernel.connection()
