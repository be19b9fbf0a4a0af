"""The plugin's table of contents: every hook it implements, each handing off to a module of its own."""

from kernel import Kernel, hookimpl
from soko_hello import settings, tasks, views


@hookimpl
def settings_model() -> type[settings.HelloSettings]:
    return settings.HelloSettings


@hookimpl
def register_blueprints(kernel: Kernel) -> list:
    return [views.blueprint]


@hookimpl
def register_tasks() -> dict:
    return {"greet": tasks.greet}
