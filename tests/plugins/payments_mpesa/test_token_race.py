"""Acceptance: 50 concurrent STK pushes from 2 processes fetch at most one OAuth token, through Redis."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from kernel.kernel import Kernel
from kernel.testing.project import Project, eventually
from kernel.testing.services import Database
from plugins.payments_mpesa.simulator import DarajaSimulator
from tests.plugins.payments_mpesa.conftest import create_tenant, new_credentials

REPO = Path(__file__).resolve().parents[3]
PROCESSES, PUSHES_EACH = 2, 25


async def test_concurrent_pushes_in_two_processes_share_one_token(
    kernel: Kernel, project: Project, mpesa_database: Database, simulator: DarajaSimulator, tmp_path: Path
) -> None:
    tenant = await create_tenant(mpesa_database.owner_url)
    await kernel.credentials.put(tenant, "mpesa", new_credentials(simulator))  # a consumer key nobody cached
    tokens, pushes = simulator.counters["token_requests"], simulator.counters["stk_pushes"]
    start = tmp_path / "start"
    env = project.environment() | {"PYTHONPATH": str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", "")}
    outputs = [tmp_path / f"burst-{n}.out" for n in range(PROCESSES)]
    processes = []
    for output in outputs:
        with output.open("wb") as sink:
            processes.append(
                subprocess.Popen(
                    [sys.executable, "-m", "tests.plugins.payments_mpesa.push_burst", tenant, str(PUSHES_EACH), start],
                    env=env,
                    cwd=project.root,
                    stdout=sink,
                    stderr=subprocess.STDOUT,
                )
            )
    try:
        await eventually(
            lambda: (
                all("ready" in output.read_text() for output in outputs)
                or any(process.poll() is not None for process in processes)
            ),
            timeout=60,
            what="both burst processes to start",
        )
        start.touch()
        await eventually(
            lambda: all(process.poll() is not None for process in processes), timeout=120, what="the bursts to end"
        )
    finally:
        for process in processes:
            if process.poll() is None:
                process.kill()
                process.wait()
    reports = [json.loads(output.read_text().splitlines()[-1]) for output in outputs]
    assert [report["accepted"] for report in reports] == [PUSHES_EACH] * PROCESSES, reports
    assert simulator.counters["stk_pushes"] - pushes == PROCESSES * PUSHES_EACH
    assert simulator.counters["token_requests"] - tokens == 1
