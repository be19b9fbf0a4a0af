"""Schemathesis against the real server with every built-in plugin enabled: no 5xx, nothing off-schema, and a
stateful walk through the documented links that reaches the business routes (their share of 2xx is printed)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections import Counter
from importlib.metadata import entry_points
from pathlib import Path

import pytest

from kernel.testing.project import Project, Running
from plugins.ratelimit.settings import DEFAULT_POLICIES

ROOT = Path(__file__).resolve().parents[2]
# Checks that need a stateful, authenticated scenario (resources created then fetched by other users) or that
# call a schema-valid request wrong when the server refuses it for a reason a schema cannot express (a string
# that is not a real phone number) are left to the plugin tests that know those rules.
EXCLUDED_CHECKS = "positive_data_acceptance,use_after_free,ensure_resource_availability,ignored_auth"


def built_in_plugins() -> list[str]:
    return sorted(ep.name for ep in entry_points(group="soko.plugins") if ep.value.startswith("plugins."))


TENANTS = ("fuzz-a", "fuzz-b")
SKUS = ("FUZZ-TEA", "FUZZ-MAIZE")
# The start of the shopper's path the links document: each must be answered with success some of the time.
# Walks reach checkout and the order less often (a few checkouts in a hundred per run), so those are printed.
BUSINESS_ROUTES = ("POST /carts", "POST /carts/<cart_id>/items")


@pytest.mark.usefixtures("hello_installed")
def test_schemathesis_finds_no_server_error_and_nothing_off_schema(
    soko_project: Project, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    soko_project.env["SOKO_PLUGINS__HELLO__API_TOKEN"] = "fuzz-token"
    # The limits stay on (their 429s are checked against the document) but high enough not to hide the routes.
    raised = [policy.model_dump(mode="json") | {"limit": 100_000} for policy in DEFAULT_POLICIES]
    soko_project.settings([*built_in_plugins(), "hello"]).plugin_config("tenancy", {"base_domains": ["localhost"]})
    soko_project.plugin_config("ratelimit", {"policies": raised})
    soko_project.migrate()
    for slug in TENANTS:
        created = soko_project.run("tenants", "create", slug, "--name", f"Fuzz {slug}")
        assert created.returncode == 0, created.stderr
        for sku in SKUS:
            added = soko_project.run(
                "products", "add", sku, "--tenant", slug, "--name", sku, "--price-minor", "5000", "--on-hand", "100000"
            )
            assert added.returncode == 0, added.stderr
    with soko_project.serve() as server:
        port = server.base_url.rsplit(":", 1)[1]
        runs = {slug: _schemathesis(server.base_url, f"{slug}.localhost:{port}", tmp_path) for slug in TENANTS}
    shares = _success_shares(server)
    with capsys.disabled():
        for slug, result in runs.items():
            print(f"\nschemathesis as {slug}: {'; '.join(_summary(result.stdout))}")
        for route, (succeeded, answered) in sorted(shares.items()):
            print(f"  {route}: {succeeded}/{answered} 2xx ({succeeded / answered:.0%})")
    for result in runs.values():
        assert result.returncode == 0, result.stdout[-6000:] + result.stderr[-2000:]
    for route in BUSINESS_ROUTES:
        assert shares.get(route, (0, 0))[0] > 0, f"no request to {route} succeeded: {shares.get(route)}"


def _schemathesis(base_url: str, host: str, workdir: Path) -> subprocess.CompletedProcess[str]:
    """One run against the served document, every request sent to one tenant's host."""
    return subprocess.run(
        [
            str(Path(sys.executable).with_name("schemathesis")),
            f"--config-file={Path(__file__).with_name('schemathesis.toml')}",
            "run",
            f"{base_url}/openapi.json",
            f"--header=Host: {host}",
            "--checks=all",
            f"--exclude-checks={EXCLUDED_CHECKS}",
            "--phases=examples,coverage,fuzzing,stateful",
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
        env=os.environ
        | {"SCHEMATHESIS_HOOKS": "tests.e2e.fuzz_hooks", "SOKO_FUZZ_SKUS": ",".join(SKUS), "PYTHONPATH": str(ROOT)},
    )


def _success_shares(server: Running) -> dict[str, tuple[int, int]]:
    """(2xx answers, all answers) per route template, read from the server's access log."""
    answered: Counter[str] = Counter()
    succeeded: Counter[str] = Counter()
    for line in server.log_path.read_text().splitlines():
        entry = json.loads(line) if line.startswith("{") else {}
        if entry.get("logger") == "soko.access" and entry.get("route"):
            route = f"{entry['method']} {entry['route']}"
            answered[route] += 1
            succeeded[route] += 200 <= entry["status"] < 300
    return {route: (succeeded[route], count) for route, count in answered.items()}


def _summary(output: str) -> list[str]:
    """The operation and test-case counts schemathesis printed."""
    lines = [line.strip() for line in output.splitlines()]
    summary = [line for line in lines if line.startswith("Operations:")]
    return summary + [lines[i + 1] for i, line in enumerate(lines[:-1]) if line == "Test cases:"]
