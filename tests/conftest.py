"""Shared test set-up. The real-server fixtures come from `kernel.testing.pytest_plugin` (soko's pytest11)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
EXAMPLE_PLUGIN = REPO / "examples" / "soko-hello"


@pytest.fixture(scope="session")
def hello_installed() -> None:
    """pip-install the example third-party plugin from its own folder, as a deployment would."""
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--no-build-isolation", str(EXAMPLE_PLUGIN)],
        check=True,
        capture_output=True,
    )
