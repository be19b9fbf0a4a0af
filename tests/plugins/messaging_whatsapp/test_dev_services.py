"""`soko dev`'s stand-in: in simulator mode the plugin's dev_services hook serves the Graph API simulator."""

from __future__ import annotations

import os
from pathlib import Path

import httpx
import pytest

from kernel.kernel import Kernel, build_kernel
from kernel.settings import SettingsError, load_raw
from kernel.testing.project import Project, free_port
from tests.plugins.messaging_whatsapp.conftest import PEPPER, SIGNING_KEY, VERIFY_TOKEN


def kernel_for(project: Project, mode: str, port: int) -> Kernel:
    project.settings(["tenancy", "auth", "messaging_whatsapp"])
    project.plugin_config("messaging_whatsapp", {"mode": mode, "base_url": f"http://127.0.0.1:{port}"})
    project.plugin_config("auth", {"otp_channel": "whatsapp"})
    return build_kernel(load_raw(project.root))


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Project:
    for name in [key for key in os.environ if key.startswith("SOKO_")]:
        monkeypatch.delenv(name)
    environment = {
        "SOKO_ENV": "development",
        "SOKO_PLUGINS__MESSAGING_WHATSAPP__APP_SECRET": "dev-app-secret",
        "SOKO_PLUGINS__MESSAGING_WHATSAPP__VERIFY_TOKEN": VERIFY_TOKEN,
        "SOKO_PLUGINS__AUTH__SIGNING_KEYS": f'{{k1 = "{SIGNING_KEY}"}}',
        "SOKO_PLUGINS__AUTH__SIGNING_KID": "k1",
        "SOKO_PLUGINS__AUTH__PEPPER": PEPPER,
    }
    for name, value in environment.items():
        monkeypatch.setenv(name, value)
    return Project(root=tmp_path)


async def test_simulator_mode_serves_the_simulator_at_base_url(project: Project) -> None:
    port = free_port()
    kernel = kernel_for(project, "simulator", port)
    [(plugin, service)] = [found for found in kernel.call("dev_services", kernel=kernel) if found[1] is not None]
    assert plugin == "messaging_whatsapp"
    async with service, httpx.AsyncClient() as http:
        answer = await http.get(f"http://127.0.0.1:{port}/_sim/messages")
    assert answer.json()["count"] == 0


def test_cloud_mode_starts_nothing_and_simulator_mode_is_refused_in_production(
    project: Project, monkeypatch: pytest.MonkeyPatch
) -> None:
    kernel = kernel_for(project, "cloud", free_port())
    assert [service for _, service in kernel.call("dev_services", kernel=kernel) if service is not None] == []
    monkeypatch.setenv("SOKO_ENV", "production")
    with pytest.raises(SettingsError) as refused:
        kernel_for(project, "simulator", free_port())
    assert "simulator is for development and test" in str(refused.value)
