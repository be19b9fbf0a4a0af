"""The operator's files in deploy/: Prometheus rules that promtool accepts and whose unit tests pass, and a Grafana
dashboard whose every query names series soko exports."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from kernel.metrics import exported_names

DEPLOY = Path(__file__).resolve().parent.parent / "deploy"
PROMTOOL = shutil.which("promtool")
SERIES = re.compile(r"\bsoko_[a-z0-9_]+\b")


@pytest.fixture(scope="module")
def promtool() -> str:
    assert PROMTOOL, "promtool is missing: install Debian's `prometheus` package (.ci/run does)"
    return PROMTOOL


@pytest.mark.parametrize("command", ["check", "test"])
def test_alert_rules_pass_promtool(promtool: str, command: str) -> None:
    target = "alerts.yml" if command == "check" else "alerts.test.yml"
    result = subprocess.run(
        [promtool, command, "rules", str(DEPLOY / "prometheus" / target)], capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout


def test_alert_rules_read_only_series_soko_exports() -> None:
    groups = yaml.safe_load((DEPLOY / "prometheus" / "alerts.yml").read_text())["groups"]
    named = {name for group in groups for rule in group["rules"] for name in SERIES.findall(rule["expr"])}
    assert named, "the rules name no soko series"
    assert named - set(exported_names()) == set()


def test_every_dashboard_panel_queries_series_soko_exports() -> None:
    dashboard = json.loads((DEPLOY / "grafana" / "soko.json").read_text())
    exported = set(exported_names())
    assert dashboard["panels"]
    for panel in dashboard["panels"]:
        expressions = [target["expr"] for target in panel["targets"]]
        named = {name for expr in expressions for name in SERIES.findall(expr)}
        assert named, f"panel {panel['title']!r} queries no soko series"
        assert named - exported == set(), f"panel {panel['title']!r} queries series nothing exports"
