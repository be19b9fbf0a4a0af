"""A PostgreSQL outage, staged on a cluster of the test's own: requests get 503 `service_unavailable` with
Retry-After (before: 500 and a traceback in the log per request), the log gets one warning per interval, and the
same server serves again once the database is back, without a restart."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from kernel.app import OUTAGE_LOG_INTERVAL_S, RETRY_AFTER_S
from kernel.testing.postgres import Cluster, cluster
from kernel.testing.project import Project, eventually
from kernel.testing.services import Servers, create_database

OUTAGE_S = 12.0
CONCURRENCY = 8


@pytest.fixture
def own_cluster() -> Iterator[Cluster]:
    with cluster() as running:
        yield running


@pytest.fixture
def outage_project(tmp_path: Path, soko_servers: Servers, own_cluster: Cluster, probe_site: Path) -> Project:
    database = asyncio.run(create_database(own_cluster.admin_url))
    project = Project(root=tmp_path)
    project.env = {
        "PYTHONPATH": str(probe_site),
        "SOKO_DATABASE_URL": database.app_url,
        "SOKO_DATABASE_OWNER_URL": database.owner_url,
        "SOKO_REDIS_URL": soko_servers.redis_url,
        "SOKO_QUEUE_NAME": f"soko-outage-{own_cluster.port}",
    }
    project.settings(["tenancy", "slowprobe"]).plugin_config("tenancy", {"base_domains": ["localhost"]})
    project.migrate()
    created = project.run("tenants", "create", "acme", "--name", "Acme")
    assert created.returncode == 0, created.stderr
    return project


async def test_an_outage_answers_503_with_retry_after_and_logs_one_warning_per_interval(
    outage_project: Project, own_cluster: Cluster
) -> None:
    host = {"Host": "acme.localhost"}
    with outage_project.serve() as server:
        async with httpx.AsyncClient(base_url=server.base_url, headers=host, timeout=30) as http:
            assert (await http.get("/slowprobe/db")).json() == {"answer": 1}
            own_cluster.stop()
            answers: list[httpx.Response] = []
            started = time.monotonic()

            async def keep_asking() -> None:
                while time.monotonic() - started < OUTAGE_S:
                    answers.append(await http.get("/slowprobe/db"))

            await asyncio.gather(*(keep_asking() for _ in range(CONCURRENCY)))
            own_cluster.start()

            async def served_again() -> bool:
                return (await http.get("/slowprobe/db")).status_code == 200

            await eventually(served_again, timeout=30, what="the server to serve again without a restart")
        records = server.log_records()
        log = server.log()
    statuses = sorted({answer.status_code for answer in answers})
    unavailable = [answer for answer in answers if answer.status_code == 503]
    warnings = [record for record in records if "database unavailable" in record.get("msg", "")]
    print(
        f"{len(answers)} requests in a {OUTAGE_S:.0f}s outage: statuses {statuses}, {len(unavailable)} 503s, "
        f"{len(warnings)} warning(s) logged, {log.count('Traceback')} tracebacks"
    )
    assert statuses == [503], statuses
    for answer in unavailable:
        assert answer.headers["Retry-After"] == str(RETRY_AFTER_S)
        assert answer.headers["content-type"].startswith("application/problem+json")
        assert answer.json()["code"] == "service_unavailable"
    assert "Traceback" not in log
    assert 1 <= len(warnings) <= OUTAGE_S / OUTAGE_LOG_INTERVAL_S + 1, [record["msg"] for record in warnings]
    assert all(record["level"] == "WARNING" for record in warnings)
