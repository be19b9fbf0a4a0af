"""The kernel's credential store, through the fakepay provider's `credentials_model`: encryption bound to tenant
and receiver, key rotation, routing keys, and `soko credentials` on a real project."""

from __future__ import annotations

import base64
import json
import os
from pathlib import Path

import asyncpg
import pytest

from kernel.credentials import CredentialsError, masked
from kernel.local_secrets import MissingSecret, local_secret
from kernel.settings import KernelSettings
from kernel.testing.project import Project
from kernel.testing.services import SESSION_CREDENTIALS_KEY as SESSION_KEY
from tests.plugins.payments.conftest import KernelFactory, create_tenant

SECRET = "sk_live_do_not_leak_7f3a9c"


def _key() -> str:
    return base64.b64encode(os.urandom(32)).decode()


def _keys(**keys: str) -> str:
    """SOKO_CREDENTIALS_KEYS as an operator writes it: a TOML inline table, key id -> key."""
    return "{" + ", ".join(f'{key_id} = "{key}"' for key_id, key in keys.items()) + "}"


async def test_round_trip_stores_only_ciphertext(make_kernel: KernelFactory, superuser: asyncpg.Connection) -> None:
    tenant = await create_tenant(superuser)
    kernel = make_kernel()
    async with kernel.running():
        await kernel.credentials.put(tenant.id, "fakepay", {"account": "acct-1", "api_key": SECRET})
        found = await kernel.credentials.get(tenant.id, "fakepay")
        other = await create_tenant(superuser)
        assert await kernel.credentials.get(other.id, "fakepay") is None
    assert found is not None
    assert found.api_key.get_secret_value() == SECRET
    assert masked(found) == {"account": "acct-1", "api_key": "**********"}
    stored = await superuser.fetchrow("SELECT ciphertext FROM credentials WHERE tenant_id = $1::uuid", tenant.id)
    assert SECRET.encode() not in stored["ciphertext"]
    assert b"acct-1" not in stored["ciphertext"]


async def test_ciphertext_copied_to_another_tenant_is_refused(
    make_kernel: KernelFactory, superuser: asyncpg.Connection
) -> None:
    victim, attacker = await create_tenant(superuser), await create_tenant(superuser)
    kernel = make_kernel()
    async with kernel.running():
        await kernel.credentials.put(victim.id, "fakepay", {"account": "victim", "api_key": SECRET})
        await kernel.credentials.put(attacker.id, "fakepay", {"account": "attacker", "api_key": "mine"})
        await superuser.execute(
            "UPDATE credentials c SET key_id = v.key_id, nonce = v.nonce, ciphertext = v.ciphertext "
            "FROM credentials v WHERE v.tenant_id = $1::uuid AND c.tenant_id = $2::uuid",
            victim.id,
            attacker.id,
        )
        with pytest.raises(CredentialsError, match="do not belong"):
            await kernel.credentials.get(attacker.id, "fakepay")
        assert (await kernel.credentials.get(victim.id, "fakepay")).api_key.get_secret_value() == SECRET
    await superuser.execute("DELETE FROM credentials WHERE tenant_id = $1::uuid", attacker.id)  # for rotate


async def test_rotation_reencrypts_under_the_newest_key(
    make_kernel: KernelFactory, superuser: asyncpg.Connection
) -> None:
    tenant = await create_tenant(superuser)
    old, new = _key(), _key()
    first = make_kernel(credentials_keys=_keys(session=SESSION_KEY, k1=old))
    async with first.running():
        await first.credentials.put(tenant.id, "fakepay", {"account": "acct-r", "api_key": SECRET})
    both = make_kernel(credentials_keys=_keys(session=SESSION_KEY, k1=old, k2=new))
    async with both.running():
        assert (await both.credentials.get(tenant.id, "fakepay")).api_key.get_secret_value() == SECRET
        assert await both.credentials.rotate() >= 1
        assert await both.credentials.rotate() == 0
    assert await superuser.fetchval("SELECT key_id FROM credentials WHERE tenant_id = $1::uuid", tenant.id) == "k2"
    only_new = make_kernel(credentials_keys=_keys(session=SESSION_KEY, k2=new))
    async with only_new.running():
        assert (await only_new.credentials.get(tenant.id, "fakepay")).api_key.get_secret_value() == SECRET
    only_old = make_kernel(credentials_keys=_keys(session=SESSION_KEY, k1=old))
    async with only_old.running():
        with pytest.raises(CredentialsError, match="'k2', which is not configured"):
            await only_old.credentials.get(tenant.id, "fakepay")
    back = make_kernel(credentials_keys=_keys(k2=new, session=SESSION_KEY))  # leave the shared database as found
    async with back.running():
        await back.credentials.rotate()


async def test_routing_key_names_one_tenant_or_none(make_kernel: KernelFactory, superuser: asyncpg.Connection) -> None:
    first, second = await create_tenant(superuser), await create_tenant(superuser)
    account = f"acct-{first.slug}"
    kernel = make_kernel()
    async with kernel.running():
        await kernel.credentials.put(first.id, "fakepay", {"account": account, "api_key": "a"})
        assert await kernel.credentials.tenant_for("fakepay", account) == first.id
        await kernel.credentials.put(second.id, "fakepay", {"account": account, "api_key": "b"})
        assert await kernel.credentials.tenant_for("fakepay", account) is None, "shared by two shops: ambiguous"
        await kernel.credentials.put(second.id, "fakepay", {"account": f"{account}-2", "api_key": "b"})
        assert await kernel.credentials.tenant_for("fakepay", account) == first.id
        assert await kernel.credentials.tenant_for("fakepay", f"{account}-2") == second.id


async def test_the_app_role_cannot_read_routes_or_inbox_directly(
    project: Project, superuser: asyncpg.Connection
) -> None:
    app = await asyncpg.connect(project.env["SOKO_DATABASE_URL"])
    try:
        for table in ("soko_kernel.webhook_routes", "soko_kernel.webhook_inbox"):
            with pytest.raises(asyncpg.InsufficientPrivilegeError):
                await app.fetch(f"SELECT * FROM {table}")
        with pytest.raises(asyncpg.PostgresError, match=r"app\.current_tenant"):
            await app.fetch("SELECT * FROM credentials")
    finally:
        await app.close()


async def test_cli_sets_shows_and_rotates_with_secrets_masked(project: Project, superuser: asyncpg.Connection) -> None:
    tenant = await create_tenant(superuser)
    document = json.dumps({"account": "acct-cli", "api_key": SECRET})
    stored = _stdin(project, document, "credentials", "set", tenant.slug, "fakepay")
    assert stored.returncode == 0, stored.stderr
    assert json.loads(stored.stdout) == {"account": "acct-cli", "api_key": "**********"}
    shown = project.run("credentials", "show", tenant.slug, "fakepay")
    assert shown.returncode == 0, shown.stderr
    assert json.loads(shown.stdout) == {"account": "acct-cli", "api_key": "**********"}
    rotated = project.run("credentials", "rotate")
    assert rotated.returncode == 0, rotated.stderr
    assert "re-encrypted 0 credential row(s)" in rotated.stdout
    for result in (stored, shown, rotated):
        assert SECRET not in result.stdout + result.stderr


@pytest.mark.parametrize(
    ("stdin", "receiver", "expected"),
    [
        ('{"account": "a", "api_key": "' + SECRET + '"}', "paypal", "no payment provider or messaging channel"),
        ('{"account": "a", "api_key": ', "fakepay", "stdin is not JSON"),
        ('["a"]', "fakepay", "one JSON object"),
        ('{"account": "a", "api_key": 42, "extra": "' + SECRET + '"}', "fakepay", "invalid credentials: api_key"),
    ],
)
async def test_cli_refuses_bad_input_in_one_line(
    project: Project, superuser: asyncpg.Connection, stdin: str, receiver: str, expected: str
) -> None:
    tenant = await create_tenant(superuser)
    result = _stdin(project, stdin, "credentials", "set", tenant.slug, receiver)
    assert result.returncode == 2
    lines = [line for line in result.stderr.splitlines() if not line.startswith("{")]
    assert len(lines) == 1, result.stderr
    assert expected in lines[0]
    assert SECRET not in result.stdout + result.stderr
    assert await superuser.fetchval("SELECT count(*) FROM credentials WHERE tenant_id = $1::uuid", tenant.id) == 0


def _stdin(project: Project, text: str, *args: str) -> object:
    import subprocess

    from kernel.testing.project import SOKO

    return subprocess.run(
        [*SOKO, *args],
        input=text,
        env=project.environment(),
        cwd=project.root,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_local_key_is_generated_once_and_never_in_production(tmp_path: Path) -> None:
    settings = KernelSettings(env="development", root=str(tmp_path))
    first = local_secret(settings, "credentials.key", setting="credentials_keys")
    assert len(first) == 32
    assert local_secret(settings, "credentials.key", setting="credentials_keys") == first
    assert (tmp_path / "var" / "credentials.key").stat().st_mode & 0o777 == 0o600
    with pytest.raises(MissingSecret, match="SOKO_CREDENTIALS_KEYS"):
        local_secret(
            KernelSettings(env="production", root=str(tmp_path)), "credentials.key", setting="credentials_keys"
        )
