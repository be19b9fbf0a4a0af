"""SIGTERM drains, against real `soko serve` and `soko worker` processes: requests in flight are all answered,
the worker takes no new job and exits within `shutdown_grace`, and a failed startup is a non-zero exit."""

from __future__ import annotations

import asyncio
import os
import signal
import time
from pathlib import Path

import httpx
import pytest
from redis import Redis

from kernel.testing.project import Project, Running, eventually, wait_for

IN_FLIGHT = 40
GRACE_S = 6.0
MARGIN_S = 5.0  # the supervisor's margin beyond the grace (kernel.processes.SHUTDOWN_MARGIN_S) for pools and logs
SERVERS = ("hypercorn", "uvicorn")  # the `server` setting's choices: every guarantee holds on both


@pytest.fixture
def probe_project(soko_project: Project, probe_site: Path) -> Project:
    soko_project.env |= {
        "PYTHONPATH": str(probe_site),
        "SOKO_SHUTDOWN_GRACE": str(GRACE_S),
        # A job a stopped worker read but did not finish is redelivered after this; keep the tests short.
        "SOKO_QUEUE_RECLAIM_AFTER_MS": "2000",
    }
    soko_project.settings(["slowprobe"])
    return soko_project.migrate()


def _redis(project: Project) -> Redis:
    return Redis.from_url(project.env["SOKO_REDIS_URL"], decode_responses=True)


def _events(project: Project) -> list[str]:
    with _redis(project) as redis:
        return list(redis.lrange(f"slowprobe:{project.env['SOKO_QUEUE_NAME']}", 0, -1))


def _exits_within(running: Running, seconds: float) -> float:
    started = time.monotonic()
    wait_for(lambda: running.process.poll() is not None, timeout=seconds, what="the process to exit")
    return time.monotonic() - started


@pytest.mark.parametrize("server_name", SERVERS)
async def test_every_request_in_flight_at_sigterm_is_answered(probe_project: Project, server_name: str) -> None:
    key = f"slowprobe:{probe_project.env['SOKO_QUEUE_NAME']}:in-flight"
    with probe_project.serve("--workers", "2", SOKO_SERVER=server_name) as server, _redis(probe_project) as redis:
        limits = httpx.Limits(max_connections=IN_FLIGHT + 5)
        async with httpx.AsyncClient(base_url=server.base_url, timeout=30, limits=limits) as http:
            requests = [
                asyncio.create_task(http.get("/slowprobe/sleep", params={"seconds": "3"})) for _ in range(IN_FLIGHT)
            ]
            await eventually(lambda: int(redis.get(key) or 0) == IN_FLIGHT, timeout=30, what="40 requests in flight")
            os.killpg(server.process.pid, signal.SIGTERM)  # as docker stop and systemd do: the whole group
            answers = await asyncio.gather(*requests, return_exceptions=True)
        took = _exits_within(server, GRACE_S + MARGIN_S)
    answered = [answer for answer in answers if isinstance(answer, httpx.Response) and answer.status_code == 200]
    print(f"{len(answered)} of {IN_FLIGHT} in-flight requests answered at SIGTERM; exited after {took:.1f}s")
    assert len(answered) == IN_FLIGHT, [repr(answer) for answer in answers if answer not in answered][:5]
    assert server.process.returncode == 0, server.log()[-3000:]
    logged = [r for r in server.log_records() if r.get("logger") == "soko.access" and r["route"] == "/slowprobe/sleep"]
    assert len(logged) == IN_FLIGHT, "every answered request's access line was flushed before the exit"


def test_the_worker_takes_no_job_after_sigterm_and_exits_within_the_grace(probe_project: Project) -> None:
    with probe_project.serve() as server, probe_project.worker() as worker:
        enqueue = lambda name, seconds: httpx.post(  # noqa: E731 - two calls below
            f"{server.base_url}/slowprobe/jobs/{name}", params={"seconds": seconds}, timeout=10
        )
        assert enqueue("running", 2).status_code == 202
        wait_for(lambda: "start:running" in _events(probe_project), timeout=30, what="the job to start")
        os.killpg(worker.process.pid, signal.SIGTERM)
        assert enqueue("after-sigterm", 0.1).status_code == 202
        took = _exits_within(worker, GRACE_S + MARGIN_S)
        print(f"worker exited {took:.1f}s after SIGTERM (grace {GRACE_S}s)")
        assert worker.process.returncode == 0, worker.log()[-3000:]
        assert _events(probe_project) == ["start:running", "done:running"], "finished its job, started no other"
        with probe_project.worker(name="worker-2"):  # the job queued after SIGTERM was left for the next worker
            wait_for(lambda: "done:after-sigterm" in _events(probe_project), timeout=30, what="the next worker")


def test_a_job_longer_than_the_grace_is_handed_back(probe_project: Project) -> None:
    with probe_project.serve() as server, probe_project.worker() as worker:
        response = httpx.post(f"{server.base_url}/slowprobe/jobs/long", params={"seconds": 20}, timeout=10)
        assert response.status_code == 202
        wait_for(lambda: "start:long" in _events(probe_project), timeout=30, what="the job to start")
        os.killpg(worker.process.pid, signal.SIGTERM)
        _exits_within(worker, GRACE_S + MARGIN_S)
        assert "done:long" not in _events(probe_project)
        with probe_project.worker(name="worker-2"):  # unacknowledged, so redelivered to the next worker
            wait_for(lambda: _events(probe_project).count("start:long") == 2, timeout=30, what="the redelivery")


@pytest.mark.parametrize(("command", "server_name"), [*(("serve", name) for name in SERVERS), ("worker", "-")])
def test_a_failed_startup_exits_non_zero(probe_project: Project, command: str, server_name: str) -> None:
    args = ("serve", "--bind", "127.0.0.1:0") if command == "serve" else ("worker",)
    server = {"SOKO_SERVER": server_name} if command == "serve" else {}
    result = probe_project.run(*args, timeout=90, SLOWPROBE_FAIL_STARTUP="1", **server)
    assert result.returncode != 0, result.stdout + result.stderr
    assert "startup fails, as asked" in result.stdout + result.stderr
