"""Fixtures of the WhatsApp tests: the Graph API simulator as a real process, a migrated database, real `soko
serve` and `soko worker` processes, shops with their own phone number ids, and a staff member's session.

Meta is the simulator (plugins/messaging_whatsapp/simulator.py) on loopback; nothing is mocked.
"""

from __future__ import annotations

import json
import secrets
import subprocess
import sys
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest

from kernel.testing.project import SOKO, Project, Running, free_port, wait_for
from kernel.testing.services import SESSION_CREDENTIALS_KEYS, Database, Servers

ENABLED = ["tenancy", "auth", "idempotency", "messaging_whatsapp"]
APP_SECRET = "whatsapp-app-secret-for-the-tests"
VERIFY_TOKEN = "whatsapp-verify-token-for-the-tests"
PASSWORD = "correct horse battery staple"
TOKEN_PREFIX = "EAAGtest"  # every access token starts so: the log test looks for it
SIGNING_KEY = "whatsapp-tests-signing-key-" + "d" * 40
PEPPER = "whatsapp-tests-otp-pepper-" + "e" * 30
# Fast retries and sweeps, so the tests see retries within seconds; the pacing is real but short.
FAST = {
    "sweep_interval_seconds": 0.3,
    "backoff_base_seconds": 0.2,
    "backoff_max_seconds": 1.0,
    "pair_interval_seconds": 0.5,
    # Longer than a worker takes to start on a loaded machine: the crash test's status webhook must win the race.
    "lease_seconds": 90,
    "timeout_seconds": 5,
    "templates": {"otp": {"name": "sign_in_code", "language": "en", "authentication": True, "use": "always"}},
}


@dataclass
class Simulator:
    """The simulator process and its control routes."""

    running: Running
    base_url: str

    def control(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        return httpx.request(method, f"{self.base_url}/_sim/{path}", timeout=15, **kwargs)

    def accepted(self, to: str | None = None) -> list[dict[str, Any]]:
        return self.control("GET", "messages", params={"to": to} if to else {}).json()["messages"]


@pytest.fixture(scope="module")
def simulator(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Simulator]:
    port = free_port()
    log_path = tmp_path_factory.mktemp("simulator") / "simulator.log"
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "plugins.messaging_whatsapp.simulator",
                "--port",
                str(port),
                "--app-secret",
                APP_SECRET,
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    running = Running(process, log_path)
    found = Simulator(running, f"http://127.0.0.1:{port}")
    try:
        wait_for(lambda: _answers(found), timeout=30, what="the Graph API simulator")
        yield found
    finally:
        running.stop()


def _answers(simulator: Simulator) -> bool:
    assert simulator.running.process.poll() is None, simulator.running.log()
    try:
        return simulator.control("GET", "messages").status_code == 200
    except httpx.TransportError:
        return False


def whatsapp_project(root: Path, servers: Servers, database: Database, simulator_url: str, **settings: Any) -> Project:
    project = Project(root=root)
    project.env = {
        "SOKO_DATABASE_URL": database.app_url,
        "SOKO_DATABASE_OWNER_URL": database.owner_url,
        "SOKO_REDIS_URL": servers.redis_url,
        "SOKO_QUEUE_NAME": f"soko-test-{uuid.uuid4().hex[:8]}",
        "SOKO_PLUGINS__AUTH__SIGNING_KEYS": f'{{k1 = "{SIGNING_KEY}"}}',
        "SOKO_PLUGINS__AUTH__SIGNING_KID": "k1",
        "SOKO_PLUGINS__AUTH__PEPPER": PEPPER,
        "SOKO_PLUGINS__MESSAGING_WHATSAPP__APP_SECRET": APP_SECRET,
        "SOKO_PLUGINS__MESSAGING_WHATSAPP__VERIFY_TOKEN": VERIFY_TOKEN,
        "SOKO_CREDENTIALS_KEYS": SESSION_CREDENTIALS_KEYS,
    }
    project.settings(ENABLED)
    project.plugin_config("tenancy", {"base_domains": ["localhost"]})
    project.plugin_config("auth", {"otp_channel": "whatsapp"})
    project.plugin_config("messaging_whatsapp", {"mode": "simulator", "base_url": simulator_url, **FAST, **settings})
    return project


@pytest.fixture(scope="session")
def whatsapp_database(
    tmp_path_factory: pytest.TempPathFactory, soko_servers: Servers, soko_database: Database
) -> Database:
    project = whatsapp_project(tmp_path_factory.mktemp("wa-migrate"), soko_servers, soko_database, "http://127.0.0.1:9")
    project.migrate()
    return soko_database


@pytest.fixture(scope="module")
def project(
    tmp_path_factory: pytest.TempPathFactory, soko_servers: Servers, whatsapp_database: Database, simulator: Simulator
) -> Project:
    return whatsapp_project(tmp_path_factory.mktemp("wa"), soko_servers, whatsapp_database, simulator.base_url)


@pytest.fixture(scope="module")
def server(project: Project, simulator: Simulator) -> Iterator[Running]:
    with project.serve() as running:
        simulator.control("POST", "settings", json={"webhook_url": f"{running.base_url}/webhooks/whatsapp"})
        yield running


@pytest.fixture(scope="module")
def worker(project: Project) -> Iterator[Running]:
    with project.worker() as running:
        yield running


@pytest.fixture
async def superuser(whatsapp_database: Database) -> AsyncIterator[asyncpg.Connection]:
    connection = await asyncpg.connect(whatsapp_database.owner_url)
    try:
        yield connection
    finally:
        await connection.close()


@dataclass(frozen=True)
class Shop:
    id: str
    slug: str
    phone_number_id: str
    session: str  # a staff member's session cookie
    csrf: str  # the CSRF token its sign-in set: unsafe requests with the session cookie repeat it

    @property
    def headers(self) -> dict[str, str]:
        return {"Host": f"{self.slug}.localhost", "Cookie": f"soko_session={self.session}", "X-CSRF-Token": self.csrf}


def run_cli(project: Project, *args: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*SOKO, *args],
        input=stdin,
        env=project.environment(),
        cwd=project.root,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


async def open_shop(project: Project, server: Running, superuser: asyncpg.Connection) -> Shop:
    """A tenant with its own WhatsApp number (set with `soko credentials set`) and a signed-in staff member."""
    slug = f"w{uuid.uuid4().hex[:12]}"
    tenant_id = await superuser.fetchval(
        "INSERT INTO tenants (slug, name) VALUES ($1, $2) RETURNING id::text", slug, slug.upper()
    )
    phone_number_id = str(10**14 + secrets.randbelow(10**14))
    credentials = json.dumps(
        {
            "phone_number_id": phone_number_id,
            "waba_id": "2" + phone_number_id[1:],
            "access_token": TOKEN_PREFIX + secrets.token_hex(16),
        }
    )
    stored = run_cli(project, "credentials", "set", slug, "whatsapp", stdin=credentials)
    assert stored.returncode == 0, stored.stdout + stored.stderr
    email = f"staff-{uuid.uuid4().hex[:8]}@shop.example"
    created = run_cli(
        project,
        "users",
        "create",
        "--tenant",
        slug,
        "--email",
        email,
        "--role",
        "staff",
        "--password-stdin",
        stdin=PASSWORD + "\n",
    )
    assert created.returncode == 0, created.stdout + created.stderr
    async with httpx.AsyncClient(base_url=server.base_url) as http:
        login = await http.post(
            "/auth/login", headers={"Host": f"{slug}.localhost"}, json={"email": email, "password": PASSWORD}
        )
    assert login.status_code == 200, login.text
    return Shop(tenant_id, slug, phone_number_id, login.cookies["soko_session"], login.cookies["soko_csrf"])


@pytest.fixture(scope="module")
def shops() -> dict[str, Shop]:
    """Shops opened once per module (each costs three CLI runs), by name."""
    return {}


@pytest.fixture
async def shop(project: Project, server: Running, superuser: asyncpg.Connection, shops: dict[str, Shop]) -> Shop:
    if "main" not in shops:
        shops["main"] = await open_shop(project, server, superuser)
    return shops["main"]


USED_NUMBERS: list[str] = []  # every customer number a test used, for the log checks


def new_customer() -> str:
    number = f"+25471{secrets.randbelow(10**7):07d}"
    USED_NUMBERS.append(number)
    return number


def assert_logs_keep_secrets(processes: list[Running], *texts: str) -> None:
    """No full customer number, access token, app secret or message text in any line the processes logged."""
    logs = "\n".join(process.log() for process in processes)
    assert logs, "the processes logged nothing"
    for number in USED_NUMBERS:
        assert number not in logs and number.lstrip("+") not in logs, f"{number[:6]}... appears in a log line"
    for secret in (TOKEN_PREFIX, APP_SECRET, VERIFY_TOKEN, *texts):
        assert secret not in logs, f"{secret[:8]}... appears in a log line"


async def open_window(superuser: asyncpg.Connection, shop: Shop, customer: str) -> None:
    """As if the customer had just written to the shop (the inbound path has its own tests)."""
    await superuser.execute(
        "INSERT INTO whatsapp_contacts (tenant_id, customer, last_inbound_at) VALUES ($1::uuid, $2, now()) "
        "ON CONFLICT (tenant_id, customer) DO UPDATE SET last_inbound_at = now()",
        shop.id,
        customer,
    )


async def message_row(superuser: asyncpg.Connection, message_id: str) -> asyncpg.Record:
    return await superuser.fetchrow("SELECT * FROM whatsapp_messages WHERE id = $1::uuid", message_id)
