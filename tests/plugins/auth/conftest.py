"""Fixtures of the auth tests: one real `soko serve` (tenancy, security, auth, outbox) on a migrated database, its
tenants, and helpers that read codes from the outbox and carry cookies by hand (the Host header names the
tenant, which httpx's cookie jar would not match).
"""

from __future__ import annotations

import secrets
import subprocess
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest

from kernel.testing.project import SOKO, Project, Running
from kernel.testing.services import Database, Servers
from kernel.testing.tenants import TestTenant as Tenant
from kernel.testing.tenants import create_tenant

ENABLED = ["tenancy", "security", "auth", "outbox"]
OLD_KEY = "old-signing-key-" + "a" * 40
NEW_KEY = "new-signing-key-" + "b" * 40
PEPPER = "otp-pepper-for-the-auth-tests-" + "c" * 20
PASSWORD = "correct horse battery staple"


def auth_project(root: Path, servers: Servers, database: Database) -> Project:
    """A project serving tenancy, security, auth and outbox, with two verification keys (rotation) set."""
    project = Project(root=root)
    project.env = {
        "SOKO_DATABASE_URL": database.app_url,
        "SOKO_DATABASE_OWNER_URL": database.owner_url,
        "SOKO_REDIS_URL": servers.redis_url,
        "SOKO_QUEUE_NAME": f"soko-test-{uuid.uuid4().hex[:8]}",
        "SOKO_PLUGINS__AUTH__SIGNING_KEYS": f'{{old = "{OLD_KEY}", new = "{NEW_KEY}"}}',
        "SOKO_PLUGINS__AUTH__SIGNING_KID": "new",
        "SOKO_PLUGINS__AUTH__PEPPER": PEPPER,
    }
    project.settings(ENABLED)
    project.plugin_config("tenancy", {"base_domains": ["localhost"]})
    # Storefronts on plain-HTTP subdomains, as every store is a sibling under one base domain (the CSRF tests).
    project.plugin_config("security", {"cors": {"storefront_schemes": ["http"]}})
    return project


@pytest.fixture(scope="session")
def auth_database(tmp_path_factory: pytest.TempPathFactory, soko_servers: Servers, soko_database: Database) -> Database:
    project = auth_project(tmp_path_factory.mktemp("auth-migrate"), soko_servers, soko_database)
    project.migrate()
    return soko_database


@pytest.fixture
def project(tmp_path: Path, soko_servers: Servers, auth_database: Database) -> Project:
    return auth_project(tmp_path, soko_servers, auth_database)


@pytest.fixture(scope="module")
def server(
    tmp_path_factory: pytest.TempPathFactory, soko_servers: Servers, auth_database: Database
) -> Iterator[Running]:
    """One server for a test module; its log file is what the log test reads."""
    project = auth_project(tmp_path_factory.mktemp("auth-serve"), soko_servers, auth_database)
    with project.serve() as running:
        yield running


@pytest.fixture
async def superuser(auth_database: Database) -> AsyncIterator[asyncpg.Connection]:
    """The migration owner (a superuser in tests): reads every tenant's outbox and stages expired rows."""
    connection = await asyncpg.connect(auth_database.owner_url)
    try:
        yield connection
    finally:
        await connection.close()


@pytest.fixture
async def tenant(superuser: asyncpg.Connection) -> Tenant:
    return await create_tenant(superuser, prefix="a")


@pytest.fixture
async def other_tenant(superuser: asyncpg.Connection) -> Tenant:
    return await create_tenant(superuser, prefix="a")


def new_phone() -> str:
    """A fresh valid Kenyan mobile number in E.164."""
    return f"+25471{secrets.randbelow(10**7):07d}"


async def latest_code(superuser: asyncpg.Connection, tenant: Tenant, phone: str) -> str:
    """The code in the newest outbox message to `phone` (the outbox is where codes go in tests)."""
    body = await superuser.fetchval(
        "SELECT body FROM outbox_messages WHERE tenant_id = $1::uuid AND recipient = $2 "
        "ORDER BY created_at DESC LIMIT 1",
        tenant.id,
        phone,
    )
    assert body is not None, f"no outbox message to {phone}"
    return next(word for word in body.replace(".", " ").split() if word.isdigit() and len(word) == 6)


class Client:
    """HTTP to the server as one tenant's browser or app: the Host header names the tenant."""

    def __init__(self, server: Running, tenant: Tenant) -> None:
        self.http = httpx.AsyncClient(base_url=server.base_url, timeout=10)
        self.tenant = tenant

    async def __aenter__(self) -> Client:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.http.aclose()

    async def call(
        self,
        method: str,
        path: str,
        *,
        token: str | None = None,
        cookies: dict[str, str] | None = None,
        headers: dict[str, str] | None = None,
        **kwargs: Any,
    ) -> httpx.Response:
        sent = {"Host": self.tenant.host, **(headers or {})}
        if token is not None:
            sent["Authorization"] = f"Bearer {token}"
        if cookies:
            sent["Cookie"] = "; ".join(f"{name}={value}" for name, value in cookies.items())
        self.http.cookies.clear()  # every cookie a test sends is explicit
        return await self.http.request(method, path, headers=sent, **kwargs)

    async def sign_in(self, superuser: asyncpg.Connection, phone: str) -> dict[str, Any]:
        """The whole OTP flow: request a code, read it from the outbox, verify it; the token pair."""
        assert (await self.call("POST", "/auth/otp/request", json={"phone": phone})).status_code == 202
        code = await latest_code(superuser, self.tenant, phone)
        response = await self.call("POST", "/auth/otp/verify", json={"phone": phone, "code": code})
        assert response.status_code == 200, response.text
        return response.json()


def users_create(
    project: Project, tenant: Tenant, email: str, role: str, password: str = PASSWORD
) -> subprocess.CompletedProcess[str]:
    """`soko users create ... --password-stdin`, as an operator runs it."""
    return subprocess.run(
        [*SOKO, "users", "create", "--tenant", tenant.slug, "--email", email, "--role", role, "--password-stdin"],
        input=password + "\n",
        env=project.environment(),
        cwd=project.root,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def create_staff(project: Project, tenant: Tenant, email: str, role: str, password: str = PASSWORD) -> str:
    """A new staff user made with the CLI; its id. The password never shows in the command's output."""
    result = users_create(project, tenant, email, role, password)
    assert result.returncode == 0, result.stdout + result.stderr
    assert password not in result.stdout + result.stderr
    return result.stdout.split()[0]


def set_cookies(response: httpx.Response) -> dict[str, str]:
    """Set-Cookie headers by cookie name, whole (attributes included)."""
    return {header.split("=", 1)[0]: header for header in response.headers.get_list("set-cookie")}


def cookie_value(set_cookie: str) -> str:
    return set_cookie.split(";", 1)[0].split("=", 1)[1]
