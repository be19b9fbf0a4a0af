"""The probe plugin's table of contents: its routes."""

from quart import Blueprint

from kernel import hookimpl
from soko_edgeprobe import views


@hookimpl
def register_blueprints() -> list[Blueprint]:
    return [views.blueprint]
