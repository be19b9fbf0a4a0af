"""`soko dev`'s stand-ins: in simulator mode the plugin's dev_services hook serves the Daraja simulator on the
configured port for as long as kernel.dev_services' block runs, and not at all when base_url points elsewhere."""

from __future__ import annotations

import base64
from pathlib import Path

import httpx
import pytest

from kernel.dev_services import dev_services
from kernel.testing.project import free_port
from kernel.testing.services import Database, Servers
from plugins.payments_mpesa.simulator import DEV_CREDENTIALS
from tests.plugins.payments_mpesa.conftest import kernel_of, mpesa_project


def token_status(port: int) -> int:
    pair = f"{DEV_CREDENTIALS['consumer_key']}:{DEV_CREDENTIALS['consumer_secret']}".encode()
    response = httpx.get(
        f"http://127.0.0.1:{port}/oauth/v1/generate",
        params={"grant_type": "client_credentials"},
        headers={"Authorization": "Basic " + base64.b64encode(pair).decode()},
        timeout=5,
    )
    return response.status_code


def test_simulator_runs_exactly_while_dev_services_run(
    tmp_path: Path, soko_servers: Servers, soko_database: Database
) -> None:
    port = free_port()
    project = mpesa_project(tmp_path, soko_servers, soko_database, "", base_url=None, simulator_port=port)
    with kernel_of(project) as kernel, dev_services(kernel):
        assert token_status(port) == 200
    with pytest.raises(httpx.ConnectError):
        token_status(port)


def test_no_simulator_when_base_url_points_elsewhere(
    tmp_path: Path, soko_servers: Servers, soko_database: Database
) -> None:
    port = free_port()
    project = mpesa_project(tmp_path, soko_servers, soko_database, "http://127.0.0.1:9", simulator_port=port)
    with kernel_of(project) as kernel, dev_services(kernel), pytest.raises(httpx.ConnectError):
        token_status(port)


@pytest.mark.parametrize(
    ("table", "env", "problem"),
    [
        ({"mode": "simulator"}, "production", "plugins.payments_mpesa.mode"),
        ({"mode": "production", "callback_base_url": None}, "production", "callback_base_url: required"),
        ({"mode": "sandbox", "callback_base_url": None}, "test", "callback_base_url: required"),
    ],
)
def test_unsafe_settings_stop_startup(
    tmp_path: Path, soko_servers: Servers, soko_database: Database, table: dict[str, object], env: str, problem: str
) -> None:
    project = mpesa_project(tmp_path, soko_servers, soko_database, "http://127.0.0.1:9", **table)
    result = project.run("config", "check", SOKO_ENV=env)
    assert result.returncode != 0
    assert problem in result.stderr
