"""The contract suite needs no asyncio auto mode: payments_mpesa's contract module passes in strict mode too.

Runs pytest in a subprocess on test_contract.py with `-p asyncio --asyncio-mode=strict`: in strict mode an async
test without pytest-asyncio's mark fails instead of running, so a suite that relied on auto mode fails here.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[2]


def test_contract_suite_passes_in_strict_mode() -> None:
    command = [sys.executable, "-m", "pytest", str(HERE / "test_contract.py"), "-q", "-p", "asyncio"]
    command += ["--asyncio-mode=strict", "-p", "no:cacheprovider", "-W", "error::pytest.PytestWarning"]
    result = subprocess.run(command, cwd=REPO, capture_output=True, text=True, timeout=300, check=False)
    summary = result.stdout.strip().splitlines()[-1] if result.stdout.strip() else result.stderr
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]
    passed = re.search(r"(\d+) passed", summary)
    assert passed and int(passed.group(1)) >= 15, summary
    assert "skipped" not in summary and "failed" not in summary, summary
