"""One validation mechanism and one contract: quart-schema's pydantic validation, and the OpenAPI 3.1 document.

Routes declare their models with quart-schema's decorators (re-exported by `kernel`); the kernel adds to every
operation what is true of all of them (problem+json errors, a unique operationId) and what plugins say of them
through the `openapi_operation` hook (the Idempotency-Key header, security requirements).
"""

from __future__ import annotations

from collections.abc import Callable
from importlib.metadata import version
from typing import TYPE_CHECKING, Any, TypeVar

from pydantic import BaseModel, ConfigDict
from quart_schema import QuartSchema
from quart_schema.openapi import OpenAPIProvider
from werkzeug.routing import Rule

from kernel.docs import install_docs

if TYPE_CHECKING:
    from kernel.app import SokoApp

_EXTRA = "__soko_openapi__"
ViewT = TypeVar("ViewT", bound=Callable[..., Any])
PROBLEM_REF = {"$ref": "#/components/schemas/Problem"}
SECURITY_SCHEMES: dict[str, Any] = {
    "bearerAuth": {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"},
    "sessionCookie": {"type": "apiKey", "in": "cookie", "name": "soko_session"},
    "csrfHeader": {"type": "apiKey", "in": "header", "name": "X-CSRF-Token"},
}


class FieldError(BaseModel):
    """One failing field: where it is (`body.items.0.sku`), what is wrong, and pydantic's error type."""

    field: str
    message: str
    type: str


class ProblemDocument(BaseModel):
    """An RFC 9457 problem: `code` is stable and machine-readable; other members may be added by a code."""

    model_config = ConfigDict(extra="allow", title="Problem")

    type: str
    title: str
    status: int
    code: str
    detail: str | None = None
    request_id: str | None = None
    errors: list[FieldError] | None = None


class SokoOpenAPIProvider(OpenAPIProvider):
    """quart-schema's generator, plus problem responses, unique operation ids and the plugins' additions."""

    def schema(self) -> dict[str, Any]:
        document = super().schema()
        components = document.setdefault("components", {})
        components.setdefault("schemas", {}).update(_problem_schemas())
        components["securitySchemes"] = SECURITY_SCHEMES
        return document

    def build_paths(self, rule: Rule) -> tuple[dict, dict]:
        paths, components = super().build_paths(rule)
        app: SokoApp = self._app  # type: ignore[assignment]
        for path_item in paths.values():
            for method, operation in path_item.items():
                path_item[method] = _complete(app, rule, method, dict(operation))
        return paths, components


def openapi_extra(**fragment: Any) -> Callable[[ViewT], ViewT]:
    """Document what quart-schema's decorators cannot say (a text/plain answer), in the hook's format."""

    def decorate(view: ViewT) -> ViewT:
        setattr(view, _EXTRA, fragment)
        return view

    return decorate


def _complete(app: SokoApp, rule: Rule, method: str, operation: dict[str, Any]) -> dict[str, Any]:
    operation["operationId"] = f"{method}_{rule.endpoint.replace('.', '_')}"
    responses = {str(status): response for status, response in (operation.get("responses") or {}).items()}
    responses["default"] = {
        "description": "An error, as problem+json with a stable `code`",
        "content": {"application/problem+json": {"schema": PROBLEM_REF}},
    }
    operation["responses"] = responses
    operation["parameters"] = list(operation.get("parameters") or [])
    view_extra = getattr(app.view_functions[rule.endpoint], _EXTRA, None)
    hooked = app.kernel.call("openapi_operation", kernel=app.kernel, method=method.upper(), rule=rule.rule)
    for _, addition in [*hooked, *([("view", view_extra)] if view_extra else [])]:
        operation["parameters"] += addition.get("parameters", [])
        operation["responses"].update(addition.get("responses", {}))
        if "security" in addition:
            operation["security"] = [*operation.get("security", []), *addition["security"]]
    return operation


def _problem_schemas() -> dict[str, Any]:
    schema = ProblemDocument.model_json_schema(ref_template="#/components/schemas/{model}")
    definitions = schema.pop("$defs", {})
    return {"Problem": schema, **definitions}


def install(app: SokoApp) -> None:
    """Attach quart-schema; `/openapi.json` and `/docs` exist only when their settings say so."""
    settings = app.kernel.settings
    QuartSchema(
        app,
        openapi_path="/openapi.json" if settings.openapi else None,
        swagger_ui_path=None,  # kernel.docs serves its own page, from a pinned package instead of a CDN
        redoc_ui_path=None,
        scalar_ui_path=None,
        info={"title": "soko", "version": version("soko")},
        openapi_provider_class=SokoOpenAPIProvider,
    )
    if settings.openapi and settings.docs:
        install_docs(app, "soko")


def field_errors(error: Exception, *, source: str) -> list[dict[str, str]]:
    """Each failing field of a request, with its path (`body.items.0.sku`), for a validation problem's `errors`."""
    details = getattr(error, "errors", None)
    if not callable(details):
        return [{"field": source, "message": str(error), "type": type(error).__name__}]
    return [
        {
            "field": ".".join([source, *(str(part) for part in item["loc"])]),
            "message": item["msg"],
            "type": item["type"],
        }
        for item in details(include_url=False, include_context=False, include_input=False)
    ]
