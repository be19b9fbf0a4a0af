"""CORS for tenants' storefronts, against `soko serve` with tenancy: a storefront may read its own tenant's
responses with credentials, never another tenant's, and platform routes admit panel origins only."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from kernel.testing.project import Project, Running
from kernel.testing.services import Database, Servers
from tests.plugins.ratelimit.harness import client, probe_project, unique_address


@pytest.fixture(scope="module")
def stores() -> tuple[str, str]:
    return f"shop{uuid.uuid4().hex[:8]}", f"shop{uuid.uuid4().hex[:8]}"


@pytest.fixture(scope="module")
def project(
    tmp_path_factory: pytest.TempPathFactory,
    soko_servers: Servers,
    soko_database: Database,
    edgeprobe: Path,
    stores: tuple[str, str],
) -> Project:
    project = probe_project(
        tmp_path_factory.mktemp("storefronts"),
        soko_servers,
        soko_database,
        edgeprobe,
        ["tenancy", "security"],
        {"tenancy": {"base_domains": ["localhost"]}, "security": {"cors": {"storefront_schemes": ["http"]}}},
    )
    mine = stores[0]
    for slug in stores:
        extra = ["--domain", f"{mine}.example"] if slug == mine else []
        created = project.run("tenants", "create", slug, "--name", slug, *extra)
        assert created.returncode == 0, created.stderr
    return project


@pytest.fixture(scope="module")
def server(project: Project) -> Iterator[Running]:
    with project.serve() as running:
        yield running


@pytest.fixture
def http(server: Running) -> Iterator[httpx.Client]:
    with client(server.base_url, unique_address()) as connected:
        yield connected


def consent(answer: httpx.Response) -> str | None:
    assert answer.headers["Vary"] == "Origin"
    return answer.headers.get("Access-Control-Allow-Origin")


def test_a_storefront_reads_its_own_tenants_responses(http: httpx.Client, stores: tuple[str, str]) -> None:
    mine, _ = stores
    for origin in (f"http://{mine}.localhost", f"http://{mine}.example"):
        answer = http.get("/probe/data", headers={"Host": f"{mine}.localhost", "Origin": origin})
        assert answer.status_code == 200, answer.text
        assert consent(answer) == origin
        assert answer.headers["Access-Control-Allow-Credentials"] == "true"


def test_another_tenants_storefront_gets_no_consent(http: httpx.Client, stores: tuple[str, str]) -> None:
    mine, theirs = stores
    answer = http.get("/probe/data", headers={"Host": f"{mine}.localhost", "Origin": f"http://{theirs}.localhost"})
    assert answer.status_code == 200
    assert consent(answer) is None


def test_unknown_hosts_and_other_schemes_get_no_consent(http: httpx.Client, stores: tuple[str, str]) -> None:
    mine, _ = stores
    for origin in ("http://nosuchstore.localhost", f"ftp://{mine}.localhost", "http://localhost"):
        answer = http.get("/probe/data", headers={"Host": f"{mine}.localhost", "Origin": origin})
        assert consent(answer) is None, origin


def test_platform_routes_admit_no_storefront(http: httpx.Client, stores: tuple[str, str]) -> None:
    mine, _ = stores
    assert consent(http.get("/healthz", headers={"Origin": f"http://{mine}.localhost"})) is None


def test_preflight_admits_active_storefronts(http: httpx.Client, stores: tuple[str, str]) -> None:
    mine, _ = stores
    asked = {"Host": f"{mine}.localhost", "Access-Control-Request-Method": "POST"}
    allowed = http.options("/panel/orders", headers=asked | {"Origin": f"http://{mine}.localhost"})
    assert allowed.status_code == 204 and consent(allowed) == f"http://{mine}.localhost"
    refused = http.options("/panel/orders", headers=asked | {"Origin": "http://nosuchstore.localhost"})
    assert refused.status_code == 403 and consent(refused) is None
