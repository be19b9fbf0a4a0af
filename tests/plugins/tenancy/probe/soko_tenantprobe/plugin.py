from typing import Any

from quart import Blueprint

from kernel import Kernel, hookimpl
from plugins.tenancy.public import tenant_task
from soko_tenantprobe import tasks, views

requires = ["tenancy"]


@hookimpl
def register_blueprints() -> list[Blueprint]:
    return [views.blueprint]


@hookimpl
def register_tasks(kernel: Kernel) -> dict[str, Any]:
    return {"add_item": tenant_task(kernel, tasks.add_item)}


@hookimpl
def piccolo_app() -> str:
    return "soko_tenantprobe.piccolo_app"
