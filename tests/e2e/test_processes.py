"""`soko migrate`, `soko serve` and `soko worker` as real processes against real PostgreSQL and Redis."""

from __future__ import annotations

import asyncio
import json
import socket
from collections.abc import Iterator

import httpx
import pytest

from kernel.testing.project import Project, free_port, wait_for
from kernel.testing.services import Servers, create_database, drop_database

HELLO_TOKEN = {"SOKO_PLUGINS__HELLO__API_TOKEN": "example-token"}


@pytest.fixture
def fresh_project(soko_project: Project, soko_servers: Servers) -> Iterator[Project]:
    """A project on a database of its own, so nothing is migrated yet (the cluster-wide app role exists)."""
    soko_project.migrate()
    database = asyncio.run(create_database(soko_servers.admin_url))
    soko_project.env |= {"SOKO_DATABASE_URL": database.app_url, "SOKO_DATABASE_OWNER_URL": database.owner_url}
    try:
        yield soko_project
    finally:
        asyncio.run(drop_database(soko_servers.admin_url, database))


def test_pending_migrations_block_serving_until_applied(fresh_project: Project) -> None:
    check = fresh_project.run("migrate", "--check")
    assert check.returncode == 1
    assert "kernel:2026-11-28T21:00:00:000000" in check.stdout

    port = free_port()
    refused = fresh_project.run("serve", "--bind", f"127.0.0.1:{port}", timeout=60)
    assert refused.returncode == 1
    assert "pending" in refused.stderr and "kernel:2026-11-28T21:00:00:000000" in refused.stderr
    refused_worker = fresh_project.run("worker", timeout=60)
    assert refused_worker.returncode == 1 and "pending" in refused_worker.stderr

    fresh_project.migrate()
    assert fresh_project.run("migrate", "--check").returncode == 0

    with fresh_project.serve() as server:
        ready = httpx.get(f"{server.base_url}/readyz")
        assert ready.status_code == 200, ready.text
        assert ready.json()["checks"] == {"database": "ok", "redis": "ok", "migrations": "ok"}


@pytest.mark.usefixtures("hello_installed")
def test_bad_settings_stop_serve_before_it_binds(soko_project: Project) -> None:
    soko_project.settings(["hello", "nosuchplugin"]).plugin_config("hello", {"greting": "typo"})
    port = free_port()
    result = soko_project.run("serve", "--bind", f"127.0.0.1:{port}")
    assert result.returncode == 2
    for expected in ("'nosuchplugin' is not installed", "plugins.hello.greting: unknown key", "api_token: required"):
        assert expected in result.stderr
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", port))  # nothing took the port


def test_serving_as_a_superuser_is_refused(soko_project: Project) -> None:
    soko_project.migrate()
    owner = soko_project.env["SOKO_DATABASE_OWNER_URL"]
    result = soko_project.run("serve", "--bind", f"127.0.0.1:{free_port()}", SOKO_DATABASE_URL=owner)
    assert result.returncode != 0
    assert "SUPERUSER" in result.stdout + result.stderr


@pytest.mark.usefixtures("hello_installed")
def test_example_plugin_end_to_end(soko_project: Project) -> None:
    soko_project.env |= HELLO_TOKEN
    soko_project.settings(["hello"]).plugin_config("hello", {"greeting": "Habari"})
    soko_project.migrate()
    with soko_project.worker() as worker, soko_project.serve() as server:
        response = httpx.get(f"{server.base_url}/hello/wanjiru", headers={"x-request-id": "req-hello-1"})
        assert response.status_code == 200
        assert response.json()["message"] == "Habari, wanjiru!"

        def greeted() -> dict | None:
            return next((r for r in worker.log_records() if r.get("msg") == "greeted wanjiru"), None)

        record = wait_for(greeted, timeout=20, what="the worker to run hello.greet")
        assert record["request_id"] == "req-hello-1"

    soko_project.settings(["hello"]).plugin_config("hello", {"enabled": False})
    with soko_project.serve() as server:
        gone = httpx.get(f"{server.base_url}/hello/wanjiru")
        assert gone.status_code == 404
        assert gone.headers["content-type"] == "application/problem+json"


@pytest.mark.usefixtures("hello_installed")
def test_config_show_masks_secrets_and_plugins_lists_what_is_installed(soko_project: Project) -> None:
    soko_project.env |= HELLO_TOKEN
    soko_project.settings(["hello"])
    shown = soko_project.run("config", "show")
    assert shown.returncode == 0, shown.stderr
    document = json.loads(shown.stdout)
    assert document["plugins"]["hello"]["api_token"] == "********"
    assert document["database_url"] == "********"
    for secret in ("example-token", soko_project.env["SOKO_DATABASE_URL"]):
        assert secret not in shown.stdout

    listed = soko_project.run("plugins", "--json")
    assert listed.returncode == 0, listed.stderr
    hello = next(row for row in json.loads(listed.stdout) if row["name"] == "hello")
    assert hello["enabled"] is True
    assert hello["version"] == "0.1.0"
    assert {"register_blueprints", "register_tasks", "settings_model"} <= set(hello["hooks"])


@pytest.mark.parametrize(
    ("unreachable", "setting"),
    [
        ({"SOKO_DATABASE_URL": "postgresql://soko_app@127.0.0.1:{port}/soko"}, "SOKO_DATABASE_URL"),
        ({"SOKO_REDIS_URL": "redis://127.0.0.1:{port}/0"}, "SOKO_REDIS_URL"),
    ],
)
def test_a_server_that_is_down_is_one_line_naming_its_setting(
    soko_project: Project, unreachable: dict[str, str], setting: str
) -> None:
    soko_project.settings(["tenancy"])
    soko_project.migrate()
    closed = {name: value.format(port=free_port()) for name, value in unreachable.items()}  # nothing listens there
    for command in (["tenants", "list"], ["serve", "--bind", f"127.0.0.1:{free_port()}"], ["worker"]):
        result = soko_project.run(*command, timeout=60, **closed)
        assert result.returncode == 1, result.stdout + result.stderr
        assert len(result.stderr.strip().splitlines()) == 1, result.stderr
        assert setting in result.stderr and "Traceback" not in result.stderr


def test_a_plugin_command_without_services_says_what_to_set(soko_project: Project) -> None:
    soko_project.settings(["tenancy"])
    for name in ("SOKO_DATABASE_URL", "SOKO_DATABASE_OWNER_URL", "SOKO_REDIS_URL"):
        del soko_project.env[name]
    result = soko_project.run("tenants", "list")
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        "soko: set SOKO_DATABASE_URL and SOKO_REDIS_URL, or run `make run` (soko dev): the commands of this project "
        "find its embedded servers by themselves"
    ]
