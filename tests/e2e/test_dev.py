"""`soko dev` (what `make run` starts): embedded servers, web and worker; Ctrl-C leaves nothing behind."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import psutil
import pytest

from kernel.settings import EMBEDDED_SERVICES
from kernel.testing.project import Project, free_port, wait_for
from plugins.commerce.demo import try_it

REPO = Path(__file__).resolve().parents[2]


def _serving(url: str) -> bool:
    try:
        return httpx.get(url, timeout=1).status_code == 200
    except httpx.TransportError:
        return False


def _descendants(pid: int) -> list[psutil.Process]:
    try:
        return psutil.Process(pid).children(recursive=True)
    except psutil.NoSuchProcess:
        return []


def _using(directory) -> list[psutil.Process]:
    """Daemonised servers (postgres, redis-server) are not children: find them by their data directory."""
    found = []
    for process in psutil.process_iter(["cmdline"]):
        if str(directory) in " ".join(process.info["cmdline"] or ()):
            found.append(process)
    return found


@pytest.fixture
def dev_root() -> Iterator[Path]:
    """A project directory the embedded PostgreSQL's own user can reach (pytest's tmp_path is root-only)."""
    root = Path.cwd() / "var" / f"e2e-dev-{uuid.uuid4().hex[:8]}"
    root.mkdir(parents=True)
    try:
        yield root
    finally:
        shutil.rmtree(root, ignore_errors=True)


def readme_curl_lines() -> list[str]:
    """The shell lines of the README's first screen that talk to the demo store."""
    text = (REPO / "README.md").read_text()
    return [line for line in text.splitlines() if "Host: demo.localhost" in line and "curl" in line]


def printed_curl_lines(log: str) -> list[str]:
    return [line.strip() for line in log.splitlines() if line.startswith("  ") and "curl" in line]


def test_the_readme_shows_the_lines_make_run_prints_for_its_default_address() -> None:
    assert readme_curl_lines() == try_it("127.0.0.1:8000")
    assert len(readme_curl_lines()) >= 4


def test_a_newcomers_first_hour_start_to_finish_and_a_quick_restart(dev_root: Path) -> None:
    """make run; the curl lines it prints, as printed; a product added by the printed staff sign-in; the CLI in
    a second terminal with no variables; Ctrl-C; then a restart."""
    # A fresh clone's settings: every built-in plugin of [development], config/*.yaml as shipped.
    shutil.copy(REPO / "settings.toml", dev_root)
    shutil.copytree(REPO / "config", dev_root / "config")
    project = Project(root=dev_root)
    port = free_port()
    env = {"SOKO_ENV": "development", "SOKO_BIND": f"127.0.0.1:{port}"}
    base = f"http://127.0.0.1:{port}"
    for attempt in ("first start", "restart"):
        started = time.monotonic()
        dev = project.start("dev", name=f"dev-{attempt.replace(' ', '-')}", **env)
        try:
            wait_for(lambda: _serving(f"{base}/readyz"), timeout=60, what=f"soko dev {attempt}")
            elapsed = time.monotonic() - started
            assert elapsed < 30, f"{attempt} took {elapsed:.1f}s"
            family = [psutil.Process(dev.process.pid), *_descendants(dev.process.pid), *_using(dev_root)]
            names = " ".join(" ".join(p.cmdline()) for p in family)
            assert "kernel serve" in names
            assert "kernel worker" in names
            assert "postgres" in names
            if attempt == "first start":
                _shop_as_a_newcomer(dev.log(), base, dev_root)
        finally:
            code = dev.stop(signal.SIGINT, timeout=40)
        assert code == 0, dev.log()
        wait_for(
            lambda family=family: not any(p.is_running() and p.status() != "zombie" for p in family),
            timeout=20,
            what="every process of soko dev to exit",
        )
        assert not (dev_root / EMBEDDED_SERVICES).exists(), "a stopped soko dev leaves no addresses behind"
    assert (dev_root / "var" / "postgres" / "PG_VERSION").exists(), "data stays for the next start"


def _shop_as_a_newcomer(log: str, base: str, root: Path) -> None:
    banner = [line for line in log.splitlines() if line.startswith("soko dev:")]
    assert any("Host: demo.localhost" in line for line in banner), log
    assert any(f"{base}/docs" in line and f"{base}/openapi.json" in line for line in banner), log
    # Quiet: no piccolo banners, no coloured warnings, nothing but our lines and JSON logs.
    noisy = [line for line in log.splitlines() if not line.isascii() or "\x1b[" in line or "Warning" in line]
    assert noisy == [], noisy

    lines = printed_curl_lines(log)
    assert lines == try_it(base.removeprefix("http://"))
    shopped = subprocess.run(
        ["bash", "-euo", "pipefail", "-c", "\n".join(lines)], capture_output=True, text=True, timeout=60, check=False
    )
    assert shopped.returncode == 0, shopped.stdout + shopped.stderr
    intent = json.loads(shopped.stdout.strip().splitlines()[-1])  # the last line pays the order
    assert (intent["status"], intent["amount"], intent["currency"]) == ("created", 70_000, "KES"), intent
    order_id = intent["order_id"]

    def succeeded() -> dict[str, Any] | None:
        found = httpx.get(f"{base}/payments/intents/{intent['id']}", headers={"Host": "demo.localhost"}, timeout=10)
        return found.json() if found.json()["status"] == "succeeded" else None

    wait_for(succeeded, timeout=30, what="the M-Pesa simulator to pay the demo order")

    def receipt() -> list[dict[str, Any]]:  # the README: the receipt goes to the WhatsApp simulator
        answer = httpx.get("http://127.0.0.1:8790/_sim/messages", params={"to": "+254712345678"}, timeout=10)
        messages: list[dict[str, Any]] = answer.json()["messages"]
        return messages

    [sent] = wait_for(receipt, timeout=30, what="the paid order's receipt at the WhatsApp simulator")
    assert sent["payload"]["template"]["name"] == "payment_receipt", sent

    home = httpx.get(f"{base}/", headers={"Host": "demo.localhost"}, timeout=10)
    assert (home.status_code, home.json()["name"], home.json()["links"]["docs"]) == (200, "Demo store", "/docs")

    sign_in = next(line for line in banner if "staff sign-in" in line)
    email, password = sign_in.rsplit(": ", 1)[1].split(" / ")
    with httpx.Client(base_url=base, headers={"Host": "demo.localhost"}, timeout=10) as http:
        login = http.post("/auth/login", json={"email": email, "password": password})
        assert login.status_code == 200, login.text
        cookies = "; ".join(f"{name}={value}" for name, value in login.cookies.items())
        http.cookies.clear()
        added = http.post(
            "/admin/products",
            headers={"Cookie": cookies, "X-CSRF-Token": login.cookies["soko_csrf"]},
            json={"sku": "newcomer-mug", "name": "Mug", "price_minor": 900, "on_hand": 3},
        )
        assert added.status_code == 201, added.text
        order = http.get(f"/orders/{order_id}", headers={"Cookie": cookies}).json()  # staff read any order
    assert (order["status"], [line["sku"] for line in order["lines"]]) == ("paid", ["chai-250g"])

    # A second terminal: no SOKO_* variable at all, in the project directory, as the README says.
    bare = {key: value for key, value in os.environ.items() if not key.startswith("SOKO_")}
    for command in (["tenants", "list"], ["products", "list", "--tenant", "demo"]):
        result = subprocess.run(
            [str(Path(sys.executable).with_name("soko")), *command],
            cwd=root,
            env=bare,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert result.returncode == 0, result.stdout + result.stderr
        assert "demo" in result.stdout or "newcomer-mug" in result.stdout, result.stdout


def test_a_customer_signs_in_with_a_code_sent_over_whatsapp_to_the_simulator(dev_root: Path) -> None:
    """`soko dev` with `otp_channel: whatsapp`: the code goes as an authentication template from the demo store's
    seeded number to the Graph API simulator, which reports its statuses back through the signed webhook."""
    shutil.copy(REPO / "settings.toml", dev_root)
    shutil.copytree(REPO / "config", dev_root / "config")
    project = Project(root=dev_root)
    port, graph_port = free_port(), free_port()
    base, graph = f"http://127.0.0.1:{port}", f"http://127.0.0.1:{graph_port}"
    dev = project.start(
        "dev",
        name="dev-whatsapp",
        SOKO_ENV="development",
        SOKO_BIND=f"127.0.0.1:{port}",
        SOKO_PLUGINS__AUTH__OTP_CHANNEL="whatsapp",
        SOKO_PLUGINS__MESSAGING_WHATSAPP__BASE_URL=graph,
    )
    phone = "+254712345678"
    try:
        wait_for(lambda: _serving(f"{base}/readyz"), timeout=60, what=f"soko dev\n{dev.log()}")
        with httpx.Client(base_url=base, headers={"Host": "demo.localhost"}, timeout=30) as http:
            requested = http.post("/auth/otp/request", json={"phone": phone})
            assert requested.status_code == 202, requested.text
            sent = httpx.get(f"{graph}/_sim/messages", params={"to": phone}, timeout=10).json()["messages"]
            assert [message["type"] for message in sent] == ["template"], sent
            template = sent[0]["payload"]["template"]
            assert template["name"] == "sign_in_code"
            code = template["components"][0]["parameters"][0]["text"]
            verified = http.post("/auth/otp/verify", json={"phone": phone, "code": code})
        assert verified.status_code == 200, verified.text
        assert verified.json()["access_token"] and verified.json()["refresh_token"]

        def statuses_accepted() -> bool:  # the simulator signs with the development stand-in secret soko checks
            webhooks = [record for record in dev.log_records() if record.get("route") == "/webhooks/whatsapp"]
            return len(webhooks) >= 3 and all(record["status"] == 200 for record in webhooks)

        wait_for(statuses_accepted, timeout=30, what=f"the simulator's status webhooks to be accepted\n{dev.log()}")
    finally:
        exit_code = dev.stop(signal.SIGINT, timeout=40)
    assert exit_code == 0, dev.log()
    log = dev.log()
    assert phone not in log and phone.lstrip("+") not in log, "a full phone number appears in a log line"
    noisy = [line for line in log.splitlines() if not line.isascii() or "\x1b[" in line or "Warning" in line]
    assert noisy == [], noisy
