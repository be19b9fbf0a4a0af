"""`/metrics` across real processes: 2 web processes and 2 workers under concurrent load count exactly what the
access log says was served and what the workers ran; a killed worker process does not take its counts with it;
the listener is its own port and refuses storefront hosts."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
from collections import Counter
from collections.abc import Callable

import asyncpg
import httpx
import psutil
import pytest
from prometheus_client.parser import text_string_to_metric_families

from kernel.testing.project import Project, Running, free_port, wait_for
from kernel.testing.tenants import create_tenant

REQUESTS = 300
SUCCEEDED = ("soko_jobs_total", (("outcome", "success"), ("task", "hello.greet")))


def scrape(port: int) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    response = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=5)
    assert response.status_code == 200, response.text
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(response.text)
        for sample in family.samples
    }


def served(metrics: dict[tuple[str, tuple[tuple[str, str], ...]], float]) -> Counter[tuple[str, str]]:
    """(route, status class) -> requests, as the metrics count them."""
    counts: Counter[tuple[str, str]] = Counter()
    for (name, labels), value in metrics.items():
        if name == "soko_http_requests_total":
            found = dict(labels)
            counts[found["route"], found["status"]] += int(value)
    return counts


def logged(*servers: Running) -> Counter[tuple[str, str]]:
    """(route, status class) -> requests, as the access log lines say."""
    counts: Counter[tuple[str, str]] = Counter()
    for server in servers:
        for record in server.log_records():
            if record.get("logger") == "soko.access":
                counts[record["route"] or "unmatched", f"{record['status'] // 100}xx"] += 1
    return counts


async def load(base_url: str) -> None:
    async with httpx.AsyncClient(base_url=base_url, timeout=30) as client:
        semaphore = asyncio.Semaphore(32)

        async def one(index: int) -> None:
            async with semaphore:
                path = f"/hello/guest{index}" if index % 3 else f"/no/such/page/{index}"
                await client.get(path)

        await asyncio.gather(*(one(index) for index in range(REQUESTS)))


def worker_children(worker: Running, metrics_port: int) -> list[psutil.Process]:
    """The supervisor's worker processes: its spawned children but the metrics listener (on `metrics_port`) and
    multiprocessing's resource tracker."""
    found = []
    for child in psutil.Process(worker.process.pid).children():
        try:
            listening = {c.laddr.port for c in child.net_connections("tcp") if c.status == psutil.CONN_LISTEN}
            command = " ".join(child.cmdline())
            spawned = "spawn_main" in command and "resource_tracker" not in command
            if child.status() != psutil.STATUS_ZOMBIE and spawned and metrics_port not in listening:
                found.append(child)
        except psutil.Error:  # gone, or a zombie, between the listing and the look
            continue
    return found


def web_children(server: Running) -> list[psutil.Process]:
    """hypercorn's worker processes: the children listening on the web port (the metrics listener is another)."""
    port = int(server.base_url.rsplit(":", 1)[1])

    def listens(child: psutil.Process) -> bool:
        try:
            return any(c.laddr.port == port and c.status == psutil.CONN_LISTEN for c in child.net_connections("tcp"))
        except psutil.NoSuchProcess:
            return False

    return [child for child in psutil.Process(server.process.pid).children() if listens(child)]


@pytest.mark.usefixtures("hello_installed")
def test_two_web_and_two_worker_processes_count_exactly_what_they_served_and_ran(soko_project: Project) -> None:
    soko_project.env |= {"SOKO_PLUGINS__HELLO__API_TOKEN": "hello-token"}
    soko_project.settings(["hello"]).plugin_config("hello", {"greeting": "Habari"}).migrate()
    web_port, worker_port = free_port(), free_port()
    with (
        soko_project.worker("--processes", "2", SOKO_METRICS__BIND=f"127.0.0.1:{worker_port}") as worker,
        soko_project.serve("--workers", "2", SOKO_METRICS__BIND=f"127.0.0.1:{web_port}") as server,
    ):
        wait_for(lambda: len(web_children(server)) == 2, timeout=20, what="two web processes")
        asyncio.run(load(server.base_url))
        greetings = REQUESTS - len(range(0, REQUESTS, 3))

        def jobs_done(expected: int) -> Callable[[], bool]:
            return lambda: scrape(worker_port).get(SUCCEEDED, 0) >= expected

        wait_for(jobs_done(greetings), timeout=60, interval=0.5, what="the workers to run every hello.greet")
        metrics = scrape(worker_port)
        assert metrics[SUCCEEDED] == greetings
        assert ("soko_jobs_total", (("outcome", "failure"), ("task", "hello.greet"))) not in metrics
        ran = [record for record in worker.log_records() if record.get("msg", "").startswith("greeted guest")]
        assert len(ran) == greetings

        # The access lines are flushed every 0.1 s; wait until each process wrote its share, then compare.
        wait_for(lambda: logged(server) == served(scrape(web_port)), timeout=10, what="access log == metrics")
        counted = served(scrape(web_port))
        assert counted[("/hello/<name>", "2xx")] == greetings
        assert counted[("unmatched", "4xx")] == REQUESTS - greetings
        web = scrape(web_port)
        assert web[("soko_http_request_duration_seconds_count", (("method", "GET"), ("route", "/hello/<name>")))] == (
            greetings
        )
        assert not any("guest" in name or "/no/such" in str(labels) for name, labels in web)  # never a raw path
        assert web[("soko_http_requests_in_flight", ())] == 0

        # A worker process dies: the supervisor stops the command, non-zero, for the orchestrator to restart.
        os.kill(worker_children(worker, worker_port)[0].pid, signal.SIGKILL)
        wait_for(lambda: worker.process.poll() is not None, timeout=60, what="soko worker to stop")
        assert worker.process.returncode != 0
        # Restarted, it counts from zero (Prometheus' rate() reads that as a counter reset) and runs what comes.
        with soko_project.worker(SOKO_METRICS__BIND=f"127.0.0.1:{worker_port}", name="restarted"):
            wait_for(lambda: _reachable(worker_port), timeout=30, what="the restarted worker's metrics listener")
            asyncio.run(load(server.base_url))
            wait_for(jobs_done(greetings), timeout=60, interval=0.5, what="the restarted worker to run them")
            assert scrape(worker_port)[SUCCEEDED] == greetings


def test_metrics_have_their_own_port_and_refuse_a_storefront_host(soko_project: Project) -> None:
    soko_project.settings([]).migrate()
    port = free_port()
    with soko_project.serve(SOKO_METRICS__BIND=f"127.0.0.1:{port}", SOKO_METRICS__TOKEN="scrape-secret") as server:
        on_store = httpx.get(f"{server.base_url}/metrics", headers={"Host": "demo.localhost"})
        assert on_store.status_code == 404
        assert "soko_http_requests_total" not in on_store.text
        wait_for(lambda: _reachable(port), timeout=20, what="the metrics listener")
        url = f"http://127.0.0.1:{port}/metrics"
        forwarded = httpx.get(url, headers={"Host": "demo.localhost", "Authorization": "Bearer scrape-secret"})
        assert forwarded.status_code == 421
        assert httpx.get(url).status_code == 401
        assert httpx.get(url, headers={"Authorization": "Bearer wrong"}).status_code == 401
        scraped = httpx.get(url, headers={"Authorization": "Bearer scrape-secret"})
        assert scraped.status_code == 200
        assert "soko_http_requests_total" in scraped.text
        assert "soko_queue_depth" in scraped.text


def _reachable(port: int) -> bool:
    try:
        httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=1)
    except httpx.TransportError:
        return False
    return True


def test_a_taken_metrics_port_stops_the_command_naming_the_setting(soko_project: Project) -> None:
    soko_project.settings([]).migrate()
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = soko_project.run("worker", timeout=60, SOKO_METRICS__BIND=f"127.0.0.1:{port}")
    assert result.returncode != 0
    assert f"cannot listen on metrics.bind 127.0.0.1:{port}" in result.stderr


async def test_requests_per_shop_only_behind_the_tenant_label_setting(soko_project: Project) -> None:
    soko_project.settings(["tenancy"]).plugin_config("tenancy", {"base_domains": ["localhost"]}).migrate()
    owner = await asyncpg.connect(soko_project.env["SOKO_DATABASE_OWNER_URL"])
    try:
        shop = await create_tenant(owner)
    finally:
        await owner.close()
    for per_tenant in (True, False):
        port = free_port()
        setting = {"SOKO_METRICS__TENANT_LABEL": "true"} if per_tenant else {}
        with soko_project.serve(SOKO_METRICS__BIND=f"127.0.0.1:{port}", **setting) as server:
            async with httpx.AsyncClient(base_url=server.base_url, headers={"Host": shop.host}) as client:
                for _ in range(3):
                    assert (await client.get("/")).status_code == 200
            wait_for(lambda port=port: _reachable(port), timeout=20, what="the metrics listener")
            metrics = scrape(port)
            per_shop = {labels: value for (name, labels), value in metrics.items() if name.startswith("soko_tenant_")}
            assert per_shop == ({(("status", "2xx"), ("tenant", shop.id)): 3} if per_tenant else {})
            assert metrics[("soko_http_requests_total", (("method", "GET"), ("route", "/"), ("status", "2xx")))] == 3
