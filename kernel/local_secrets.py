"""Secrets generated once per project directory, for development and test only, so `soko dev` and test suites
need nothing set. Production must set them in the environment: `local_secret` refuses any other environment.
"""

from __future__ import annotations

import os
import secrets
from pathlib import Path

from kernel.settings import KernelSettings, project_root

LOCAL_ENVS = frozenset({"development", "test"})


class MissingSecret(RuntimeError):
    """A secret the kernel needs is not configured (production never gets a generated one)."""


def local_secret(settings: KernelSettings, name: str, *, setting: str) -> bytes:
    """32 random bytes kept in `<root>/var/<name>`, created by the first process that asks (others read it)."""
    if settings.env not in LOCAL_ENVS:
        raise MissingSecret(
            f"set SOKO_{setting.upper()} (see docs/configuration.md); only development and test generate one"
        )
    folder = Path(settings.root).resolve() if settings.root else project_root()
    path = folder / "var" / name
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        draft = path.with_name(f".{name}.{secrets.token_hex(8)}")
        draft.write_bytes(secrets.token_bytes(32))
        draft.chmod(0o600)
        try:
            os.link(draft, path)  # atomic: of processes racing to create it, one wins and the rest read its file
        except FileExistsError:
            pass
        finally:
            draft.unlink()
    data = path.read_bytes()
    if len(data) != 32:
        raise MissingSecret(f"{path} does not hold a 32-byte secret; delete it to have a new one generated")
    return data
