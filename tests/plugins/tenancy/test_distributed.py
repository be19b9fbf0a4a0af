"""Tenant changes reach every serving process at once on a Redis Cluster and behind Sentinels: the change
announcement is a PUBLISH (a Cluster forwards it to every node, so a subscriber on any node hears it) and the
listener's client comes from `kernel.redis`, like every other Redis user's."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from kernel.testing.engines import RedisDeployment, redis_deployment
from kernel.testing.project import Project, eventually
from kernel.testing.services import Database, Servers
from tests.plugins.tenancy.conftest import TENANCY_CONFIG, tenancy_project


@pytest.fixture(scope="module", params=["cluster", "sentinel"])
def deployment(request: pytest.FixtureRequest) -> Iterator[RedisDeployment]:
    with redis_deployment(request.param) as started:
        yield started


@pytest.fixture
def project(
    tmp_path: Path, soko_servers: Servers, migrated: Database, probe_site: Path, deployment: RedisDeployment
) -> Project:
    found = tenancy_project(tmp_path, Servers(soko_servers.admin_url, deployment.engine.url), migrated, probe_site)
    found.env |= deployment.env
    found.plugin_config("tenancy", TENANCY_CONFIG | {"cache_ttl_seconds": 3600})
    return found


async def test_cli_changes_reach_both_processes_of_a_server_at_once(project: Project) -> None:
    """Each request is a new connection, which either process of the 2-process server may take: after each
    `soko tenants` change, every answer (8 in a row) is the new one, though the cache TTL is an hour."""
    slug = f"dist-{uuid.uuid4().hex[:8]}"
    host = f"{slug}.localhost"
    limits = httpx.Limits(max_keepalive_connections=0)
    with project.serve("--workers", "2") as server:
        async with httpx.AsyncClient(base_url=server.base_url, limits=limits) as http:

            async def statuses() -> list[int]:
                return [(await http.get("/probe/items", headers={"Host": host})).status_code for _ in range(8)]

            async def all_answer(expected: int) -> bool:
                return await statuses() == [expected] * 8

            assert await statuses() == [404] * 8  # cached as unknown, for an hour, in both processes
            for command, expected in [(["create", slug, "--name", "Duka"], 200), (["suspend", slug], 403)]:
                result = project.run("tenants", *command)
                assert result.returncode == 0, result.stderr
                await eventually(
                    lambda: all_answer(expected),  # noqa: B023 - awaited before the loop moves on
                    timeout=5,
                    what=f"every answer to be {expected} after `soko tenants {command[0]}`",
                )
