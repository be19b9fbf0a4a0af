"""Schemathesis against the real server with every built-in plugin enabled: no 5xx, nothing off-schema."""

from __future__ import annotations

import subprocess
import sys
from importlib.metadata import entry_points
from pathlib import Path

import pytest

from kernel.testing.project import Project

MAX_EXAMPLES = 15
# Checks that need a stateful, authenticated scenario (resources created then fetched by other users) or that
# call a schema-valid request wrong when the server refuses it for a reason a schema cannot express (a string
# that is not a real phone number) are left to the plugin tests that know those rules.
EXCLUDED_CHECKS = "positive_data_acceptance,use_after_free,ensure_resource_availability,ignored_auth"


def built_in_plugins() -> list[str]:
    return sorted(ep.name for ep in entry_points(group="soko.plugins") if ep.value.startswith("plugins."))


TENANTS = ("fuzz-a", "fuzz-b")


@pytest.mark.usefixtures("hello_installed")
def test_schemathesis_finds_no_server_error_and_nothing_off_schema(
    soko_project: Project, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    soko_project.env["SOKO_PLUGINS__HELLO__API_TOKEN"] = "fuzz-token"
    soko_project.settings([*built_in_plugins(), "hello"]).plugin_config("tenancy", {"base_domains": ["localhost"]})
    soko_project.migrate()
    for slug in TENANTS:
        created = soko_project.run("tenants", "create", slug, "--name", f"Fuzz {slug}")
        assert created.returncode == 0, created.stderr
    with soko_project.serve() as server:
        port = server.base_url.rsplit(":", 1)[1]
        runs = {slug: _schemathesis(server.base_url, f"{slug}.localhost:{port}", tmp_path) for slug in TENANTS}
    with capsys.disabled():
        for slug, result in runs.items():
            print(f"\nschemathesis as {slug}: {'; '.join(_summary(result.stdout))}")
    for result in runs.values():
        assert result.returncode == 0, result.stdout[-6000:] + result.stderr[-2000:]


def _schemathesis(base_url: str, host: str, workdir: Path) -> subprocess.CompletedProcess[str]:
    """One run against the served document, every request sent to one tenant's host."""
    return subprocess.run(
        [
            str(Path(sys.executable).with_name("schemathesis")),
            "run",
            f"{base_url}/openapi.json",
            f"--header=Host: {host}",
            "--checks=all",
            f"--exclude-checks={EXCLUDED_CHECKS}",
            f"--max-examples={MAX_EXAMPLES}",
            "--phases=examples,coverage,fuzzing",
            "--workers=2",
            "--request-timeout=10",
            "--seed=20261128",
            "--no-color",
        ],
        capture_output=True,
        text=True,
        timeout=600,
        cwd=workdir,
        check=False,
    )


def _summary(output: str) -> list[str]:
    """The operation and test-case counts schemathesis printed."""
    lines = [line.strip() for line in output.splitlines()]
    summary = [line for line in lines if line.startswith("Operations:")]
    return summary + [lines[i + 1] for i, line in enumerate(lines[:-1]) if line == "Test cases:"]
