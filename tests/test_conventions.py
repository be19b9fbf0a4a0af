"""Conventions the code keeps, checked over every built-in plugin's source: a plugin's state and settings live
where the kernel gives them a place (`kernel.state`, `kernel.settings_of`), and plugins meet only through
`public.py`."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PLUGINS = Path(__file__).resolve().parent.parent / "plugins"
SOURCES = sorted(path for path in PLUGINS.rglob("*.py") if "piccolo_migrations" not in path.parts)
MUTABLE_STATE = {"WeakKeyDictionary", "WeakValueDictionary", "dict", "list", "set", "defaultdict"}


def _module_level_state(tree: ast.Module) -> list[str]:
    found = []
    for node in tree.body:
        value = node.value if isinstance(node, ast.Assign | ast.AnnAssign) else None
        if isinstance(value, ast.Call) and getattr(value.func, "id", getattr(value.func, "attr", "")) in MUTABLE_STATE:
            found.append(ast.unparse(node).split("=")[0].strip())
    return found


@pytest.mark.parametrize("source", SOURCES, ids=lambda path: str(path.relative_to(PLUGINS)))
def test_plugins_keep_no_per_kernel_state_or_settings_helpers_of_their_own(source: Path) -> None:
    tree = ast.parse(source.read_text())
    assert _module_level_state(tree) == [], "keep per-kernel state in kernel.state(plugin, build)"
    helpers = [node.name for node in tree.body if isinstance(node, ast.FunctionDef) and node.name == "settings_of"]
    assert helpers == [], "read settings with kernel.settings_of(plugin, Model)"


@pytest.mark.parametrize("source", SOURCES, ids=lambda path: str(path.relative_to(PLUGINS)))
def test_plugins_import_each_other_only_through_public(source: Path) -> None:
    own = source.relative_to(PLUGINS).parts[0]
    imported = [
        node.module
        for node in ast.walk(ast.parse(source.read_text()))
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("plugins.")
    ]
    foreign = [name for name in imported if name.split(".")[1] != own and not name.endswith(".public")]
    assert foreign == []
