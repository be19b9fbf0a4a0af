"""A throwaway soko project on disk, and the real `soko` processes that run it.

End-to-end tests drive `soko serve` and `soko worker` exactly as operators do: same settings files, same
environment variables, real sockets. Every process is started in its own process group and killed with it.
"""

from __future__ import annotations

import asyncio
import inspect
import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

SOKO = [sys.executable, "-m", "kernel"]
START_TIMEOUT_S = 30.0


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def wait_for(condition: Any, *, timeout: float, interval: float = 0.05, what: str = "condition") -> Any:
    """Poll until `condition()` is truthy, or fail naming what never happened."""
    deadline = time.monotonic() + timeout
    while True:
        result = condition()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(interval)


async def eventually(condition: Callable[[], Any], *, timeout: float, what: str) -> Any:  # noqa: ASYNC109 - a poll deadline, as wait_for takes
    """`wait_for` for async tests: poll `condition()` (plain or async) without blocking the event loop."""
    deadline = time.monotonic() + timeout
    while True:
        result = condition()
        if inspect.isawaitable(result):
            result = await result
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        await asyncio.sleep(0.05)


@dataclass
class Running:
    """A started process: its handle and the file its output goes to."""

    process: subprocess.Popen[bytes]
    log_path: Path
    base_url: str = ""

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def log_records(self) -> list[dict[str, Any]]:
        """Every JSON log line the process wrote so far (other lines are skipped)."""
        records = []
        for line in self.log().splitlines():
            if line.startswith("{"):
                try:
                    records.append(json.loads(line))
                except json.JSONDecodeError:
                    continue
        return records

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 15.0) -> int:
        """Signal the whole process group; kill it if it has not exited in time."""
        if self.process.poll() is None:
            try:
                os.killpg(self.process.pid, sig)
                return self.process.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        return self.process.wait(timeout=timeout)


@dataclass
class Project:
    """A soko project directory with its environment: settings.toml, config/*.yaml, SOKO_* variables."""

    root: Path
    env: dict[str, str] = field(default_factory=dict)

    def settings(self, enabled: Sequence[str] = (), **test_env: Any) -> Project:
        """Write settings.toml enabling `enabled`; keyword arguments become [test] keys."""
        lines = ["[default.plugins]", f"enabled = {json.dumps(list(enabled))}", "", "[test]"]
        lines += [f"{key} = {json.dumps(value)}" for key, value in test_env.items()]
        (self.root / "settings.toml").write_text("\n".join(lines) + "\n")
        return self

    def plugin_config(self, plugin: str, table: Mapping[str, Any]) -> Project:
        """Write config/<plugin>.yaml with `table` as `plugins.<plugin>` (JSON is valid YAML)."""
        document = {"default": {"plugins": {"dynaconf_merge": True, plugin: dict(table)}}}
        (self.root / "config").mkdir(exist_ok=True)
        (self.root / "config" / f"{plugin}.yaml").write_text(json.dumps(document))
        return self

    def environment(self, **overrides: str) -> dict[str, str]:
        environ = {k: v for k, v in os.environ.items() if not k.startswith("SOKO_")}
        return environ | {"SOKO_ROOT": str(self.root), "SOKO_ENV": "test"} | self.env | overrides

    def run(self, *args: str, timeout: float = 120, **overrides: str) -> subprocess.CompletedProcess[str]:
        """Run `soko ARGS` to completion and return its output."""
        return subprocess.run(
            [*SOKO, *args],
            env=self.environment(**overrides),
            cwd=self.root,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )

    def migrate(self) -> Project:
        """Run `soko migrate` and fail with its output unless it applied everything."""
        result = self.run("migrate")
        assert result.returncode == 0, f"soko migrate exited {result.returncode}:\n{result.stdout}{result.stderr}"
        return self

    def start(self, *args: str, name: str, **overrides: str) -> Running:
        log_path = self.root / f"{name}.log"
        with log_path.open("wb") as log:
            process = subprocess.Popen(
                [*SOKO, *args],
                env=self.environment(**overrides),
                cwd=self.root,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        return Running(process, log_path)

    @contextmanager
    def serve(self, *args: str, **overrides: str) -> Iterator[Running]:
        """`soko serve` on a free port, yielded once `/healthz` answers."""
        port = free_port()
        running = self.start("serve", "--bind", f"127.0.0.1:{port}", *args, name=f"serve-{port}", **overrides)
        running.base_url = f"http://127.0.0.1:{port}"
        try:
            wait_for(lambda: _answers(running), timeout=START_TIMEOUT_S, what=f"soko serve\n{running.log()}")
            yield running
        finally:
            running.stop()

    @contextmanager
    def worker(self, *args: str, name: str = "worker", **overrides: str) -> Iterator[Running]:
        """`soko worker`, yielded once it has said it is listening."""
        running = self.start("worker", *args, name=name, **overrides)
        try:
            wait_for(
                lambda: "Listening started" in running.log() or running.process.poll() is not None,
                timeout=START_TIMEOUT_S,
                what="soko worker to listen",
            )
            assert running.process.poll() is None, f"worker exited early:\n{running.log()}"
            yield running
        finally:
            running.stop()


def _answers(running: Running) -> bool:
    if running.process.poll() is not None:
        raise AssertionError(f"soko serve exited with {running.process.returncode}:\n{running.log()}")
    try:
        return httpx.get(f"{running.base_url}/healthz", timeout=1).status_code == 200
    except httpx.TransportError:
        return False
