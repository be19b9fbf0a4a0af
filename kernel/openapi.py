"""One validation mechanism and one contract: quart-schema's pydantic validation, and the OpenAPI 3.1 document.

Routes declare their models with quart-schema's decorators (re-exported by `kernel`); the kernel adds to every
operation what is true of all of them (a unique operationId, the validation and body-size problems) and what
plugins say of them through the `openapi_operation` hook (the Idempotency-Key header, security requirements).

Errors are listed by status, so a client (and the fuzzer) can tell a wrong status from a documented one: a view
names its own with `openapi_extra(responses=problem_responses({...}))`. Only an operation that lists no error
at all keeps a catch-all `default` problem response.
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
PROBLEM_CONTENT = {"application/problem+json": {"schema": PROBLEM_REF}}
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
        app: SokoApp = self._app  # type: ignore[assignment]
        session = SECURITY_SCHEMES["sessionCookie"] | {"name": app.kernel.cookie_name("soko_session")}
        components["securitySchemes"] = SECURITY_SCHEMES | {"sessionCookie": session}  # `__Host-` over HTTPS
        return document

    def build_paths(self, rule: Rule) -> tuple[dict, dict]:
        paths, components = super().build_paths(rule)
        app: SokoApp = self._app  # type: ignore[assignment]
        for path_item in paths.values():
            for method, operation in path_item.items():
                path_item[method] = _complete(app, rule, method, dict(operation))
        return paths, components


def openapi_extra(**fragment: Any) -> Callable[[ViewT], ViewT]:
    """Document what quart-schema's decorators cannot say, in the `openapi_operation` hook's format: `parameters`,
    `responses` (a text/plain answer, the view's problems), `security`, and `links` by status (the operations a
    response leads to, which the fuzzer's stateful phase follows). Applied twice (a guard decorator documents
    its own answers), the fragments add up."""

    def decorate(view: ViewT) -> ViewT:
        known = getattr(view, _EXTRA, {})
        responses = dict(known.get("responses", {}))
        _merge_responses(responses, fragment.get("responses", {}))
        links = {status: dict(named) for status, named in known.get("links", {}).items()}
        for status, named in fragment.get("links", {}).items():
            links.setdefault(status, {}).update(named)
        merged = known | fragment | {"responses": responses, "links": links}
        merged["parameters"] = [*known.get("parameters", []), *fragment.get("parameters", [])]
        setattr(view, _EXTRA, merged)
        return view

    return decorate


def problem_responses(descriptions: dict[int, str]) -> dict[str, Any]:
    """Problem answers by status, for `openapi_extra(responses=...)` or an `openapi_operation` hook."""
    return {str(status): {"description": text, "content": PROBLEM_CONTENT} for status, text in descriptions.items()}


def operation_id(method: str, endpoint: str) -> str:
    """The operationId of a view (`post_commerce_create_cart`), which links name."""
    return f"{method.lower()}_{endpoint.replace('.', '_')}"


def _complete(app: SokoApp, rule: Rule, method: str, operation: dict[str, Any]) -> dict[str, Any]:
    operation["operationId"] = operation_id(method, rule.endpoint)
    responses = {str(status): response for status, response in (operation.get("responses") or {}).items()}
    operation["parameters"] = list(operation.get("parameters") or [])
    if "requestBody" in operation:
        responses |= problem_responses(
            {
                400: "`validation_error`: the body is not valid JSON or breaks the schema (see `errors`)",
                413: "`payload_too_large`: the body is larger than the kernel's `max_body_bytes`",
                415: "`unsupported_media_type`: the body is not application/json",
            }
        )
    operation["responses"] = responses
    view_extra = getattr(app.view_functions[rule.endpoint], _EXTRA, None)
    hooked = app.kernel.call("openapi_operation", kernel=app.kernel, method=method.upper(), rule=rule.rule)
    for _, addition in [*hooked, *([("view", view_extra)] if view_extra else [])]:
        operation["parameters"] += addition.get("parameters", [])
        _merge_responses(responses, addition.get("responses", {}))
        for status, links in addition.get("links", {}).items():
            responses[str(status)].setdefault("links", {}).update(links)
        if "security" in addition:
            operation["security"] = [*operation.get("security", []), *addition["security"]]
    if not any(status[0] in "45" for status in responses):
        responses["default"] = {
            "description": "An error, as problem+json with a stable `code`",
            "content": PROBLEM_CONTENT,
        }
    return operation


def _merge_responses(responses: dict[str, Any], additions: dict[str, Any]) -> None:
    """Add responses; two problem answers under one status (the body's 400 and a missing header's) join their
    descriptions instead of one hiding the other."""
    for status, addition in additions.items():
        known = responses.get(str(status))
        same_kind = known is not None and "content" in known and addition.get("content") == known["content"]
        if same_kind and addition["description"] not in known["description"]:
            addition = addition | {"description": f"{known['description']}; {addition['description']}"}
        elif same_kind:
            continue
        responses[str(status)] = addition


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
