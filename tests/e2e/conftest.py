"""Fixtures of the end-to-end tests: the slow-work probe plugin (./slowprobe), for processes only."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

PROBE = Path(__file__).parent / "slowprobe"


@pytest.fixture(scope="session")
def probe_site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The probe plugin with a dist-info of its own (its entry point), on a path only our processes get."""
    site = tmp_path_factory.mktemp("slowprobe-site")
    shutil.copytree(PROBE / "soko_slowprobe", site / "soko_slowprobe")
    info = site / "soko_slowprobe-0.1.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: soko-slowprobe\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text("[soko.plugins]\nslowprobe = soko_slowprobe.plugin\n")
    return site
