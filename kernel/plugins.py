"""Finding, choosing and calling plugins.

Every plugin, built-in or third-party, is an entry point in the `soko.plugins` group. Only the names in
`plugins.enabled` are imported: installing a package never enables it. Each kernel gets its own PluginManager.
"""

from __future__ import annotations

import inspect
from collections.abc import Iterable, Sequence
from importlib.metadata import EntryPoint, entry_points
from typing import Any

import pluggy

from kernel import hookspecs

GROUP = "soko.plugins"


def installed() -> dict[str, EntryPoint]:
    """Every plugin installed in this environment, by name."""
    return {ep.name: ep for ep in entry_points(group=GROUP)}


def new_manager() -> pluggy.PluginManager:
    manager = pluggy.PluginManager("soko")
    manager.add_hookspecs(hookspecs)
    return manager


def load(manager: pluggy.PluginManager, names: Sequence[str], extra: Iterable[tuple[str, object]] = ()) -> list[str]:
    """Register the enabled plugins (plus `extra` objects, as tests do) and return the problems found."""
    available = installed()
    problems = []
    for name in names:
        entry = available.get(name)
        if entry is None:
            known = ", ".join(sorted(available)) or "none"
            problems.append(
                f"plugins.enabled: {name!r} is not installed (installed: {known}); install its package "
                "or remove it from plugins.enabled (settings.toml or SOKO_PLUGINS__ENABLED)"
            )
            continue
        manager.register(entry.load(), name=name)
    for name, plugin in extra:
        manager.register(plugin, name=name)
    try:
        manager.check_pending()
    except pluggy.PluginValidationError as error:
        problems.append(f"plugin {error.plugin!r}: {error}")
    problems.extend(_unmet_requirements(manager))
    return problems


def _unmet_requirements(manager: pluggy.PluginManager) -> list[str]:
    loaded = {name for name, _ in manager.list_name_plugin()}
    problems = []
    for name, plugin in manager.list_name_plugin():
        for needed in getattr(plugin, "requires", ()):
            if needed not in loaded:
                problems.append(f"plugin {name!r} requires {needed!r}: add it to plugins.enabled")
    return problems


def call_each(
    manager: pluggy.PluginManager, hook: str, order: Sequence[str], /, **kwargs: Any
) -> list[tuple[str, Any]]:
    """Call `hook` on each plugin, in settings order, keeping who returned what (pluggy's call drops that).

    Positional-only, so a hook may have an argument called `hook` or `order` (`order_paid` has).
    """
    results = []
    for impl in getattr(manager.hook, hook).get_hookimpls():
        arguments = [kwargs[name] for name in impl.argnames]
        results.append((impl.plugin_name, impl.function(*arguments)))
    rank = {name: index for index, name in enumerate(order)}
    results.sort(key=lambda item: rank.get(item[0], len(rank)))
    return [(name, result) for name, result in results if result is not None]


async def await_all(results: Iterable[tuple[str, Any]]) -> None:
    """Await whatever hook implementations returned that is awaitable (pluggy itself is synchronous)."""
    for _, result in results:
        if inspect.isawaitable(result):
            await result


def version(name: str) -> str:
    """The installed distribution's version of a plugin, for `soko plugins`."""
    entry = installed().get(name)
    return entry.dist.version if entry is not None and entry.dist is not None else "-"
