"""The request pipeline and error handling, through the real app in process (Quart's ASGI test client)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from quart import Blueprint, Request, Response, request

from kernel import CallNext, RequestMiddleware, Stage, hookimpl
from kernel.app import SokoApp
from kernel.problems import PROBLEM_JSON
from kernel.settings import SettingsError
from tests.kernel.conftest import KernelFactory

AppFactory = Callable[..., SokoApp]
SECRET = "postgres://owner:hunter2@db/prod"


class Routes:
    """A plugin with routes that fail in each way a real view can."""

    @hookimpl
    def register_blueprints(self) -> list[Blueprint]:
        blueprint = Blueprint("routes", __name__)

        @blueprint.get("/boom")
        async def boom() -> str:
            raise RuntimeError(f"SELECT * FROM secrets -- {SECRET}")

        @blueprint.post("/echo")
        async def echo() -> Any:
            return {"got": await request.get_json()}

        @blueprint.get("/stages")
        async def stages() -> Any:
            return {"seen": request.headers.get("x-seen", "")}

        return [blueprint]


class Stamp(RequestMiddleware):
    """Records the order layers ran in, on the way in and out."""

    def __init__(self, stage: Stage, label: str) -> None:
        self.stage = stage  # type: ignore[misc]
        self.label = label

    async def __call__(self, request: Request, call_next: CallNext) -> Response:
        request.headers["x-seen"] = request.headers.get("x-seen", "") + f">{self.label}"
        response = await call_next()
        response.headers["x-out"] = response.headers.get("x-out", "") + f"<{self.label}"
        return response


class Stamps:
    """Registers its middleware in the wrong order on purpose: the kernel must sort them by stage."""

    @hookimpl
    def register_middleware(self) -> list[RequestMiddleware]:
        return [Stamp(Stage.IDEMPOTENCY, "idem"), Stamp(Stage.SECURITY, "sec"), Stamp(Stage.RATE_LIMIT, "rate")]


async def call(app: SokoApp, method: str, path: str, **kwargs: Any) -> Response:
    async with app.test_app() as test_app:
        return await test_app.test_client().open(path, method=method, **kwargs)


async def test_unhandled_error_is_a_500_problem_without_internals(
    make_app: AppFactory, caplog: pytest.LogCaptureFixture
) -> None:
    response = await call(make_app(extra=[("routes", Routes())]), "GET", "/boom", headers={"x-request-id": "req-42"})
    body = await response.get_json()
    assert response.status_code == 500
    assert response.content_type == PROBLEM_JSON
    assert body["code"] == "internal_error" and body["request_id"] == "req-42"
    text = await response.get_data(as_text=True)
    for leak in ("Traceback", "SELECT", "hunter2", "RuntimeError", "boom"):
        assert leak not in text
    assert any(record.exc_info for record in caplog.records), "the server side keeps the traceback"


async def test_malformed_json_is_a_validation_error(make_app: AppFactory) -> None:
    response = await call(
        make_app(extra=[("routes", Routes())]),
        "POST",
        "/echo",
        data=b'{"a": ',
        headers={"content-type": "application/json"},
    )
    assert response.status_code == 400
    assert (await response.get_json())["code"] == "validation_error"


async def test_body_over_the_limit_is_413(make_app: AppFactory) -> None:
    app = make_app(extra=[("routes", Routes())], max_body_bytes=64)
    response = await call(app, "POST", "/echo", data=b"x" * 65, headers={"content-type": "application/json"})
    assert response.status_code == 413
    assert (await response.get_json())["code"] == "payload_too_large"
    within = await call(app, "POST", "/echo", json={"a": 1})
    assert within.status_code == 200


@pytest.mark.parametrize(
    ("method", "path", "status", "code"),
    [("GET", "/nowhere", 404, "not_found"), ("DELETE", "/healthz", 405, "method_not_allowed")],
)
async def test_routing_errors_are_problems(
    make_app: AppFactory, method: str, path: str, status: int, code: str
) -> None:
    response = await call(make_app(), method, path)
    assert response.status_code == status
    assert response.content_type == PROBLEM_JSON
    body = await response.get_json()
    assert body["code"] == code and body["status"] == status and body["request_id"]
    if status == 405:
        assert "GET" in response.headers["Allow"]


@pytest.mark.parametrize(
    ("offered", "kept"),
    [
        ("abc-123_x.y:z", True),
        ("x" * 129, False),
        ("bad id", False),
        ("tab\tid", False),
        ("<script>", False),
        ("", False),
    ],
)
async def test_request_id_is_echoed_only_when_well_formed(make_app: AppFactory, offered: str, kept: bool) -> None:
    response = await call(make_app(), "GET", "/healthz", headers={"x-request-id": offered} if offered else {})
    echoed = response.headers["X-Request-ID"]
    assert (echoed == offered) is kept
    if not kept:
        assert len(echoed) == 32 and echoed.isalnum()


async def test_middleware_runs_in_stage_order_on_errors_too(make_app: AppFactory) -> None:
    app = make_app(extra=[("routes", Routes()), ("stamps", Stamps())])
    ok = await call(app, "GET", "/stages")
    assert (await ok.get_json())["seen"] == ">sec>rate>idem"
    assert ok.headers["x-out"] == "<idem<rate<sec"
    missing = await call(app, "GET", "/nowhere")
    assert missing.status_code == 404 and missing.headers["x-out"] == "<idem<rate<sec"


async def test_a_failing_middleware_is_contained_at_its_boundary(make_app: AppFactory) -> None:
    class Broken(RequestMiddleware):
        stage = Stage.AUTH

        async def __call__(self, request: Request, call_next: CallNext) -> Response:
            raise RuntimeError("auth backend exploded")

    class Plugin:
        @hookimpl
        def register_middleware(self) -> list[RequestMiddleware]:
            return [Broken()]

    response = await call(make_app(extra=[("stamps", Stamps()), ("broken", Plugin())]), "GET", "/healthz")
    assert response.status_code == 500
    assert response.headers["x-out"] == "<rate<sec", "outer layers still see the error response"


def test_two_plugins_claiming_an_exclusive_stage_fail_startup(make_kernel: KernelFactory) -> None:
    class Resolver(RequestMiddleware):
        stage = Stage.TENANCY

        async def __call__(self, request: Request, call_next: CallNext) -> Response:
            return await call_next()

    class Plugin:
        @hookimpl
        def register_middleware(self) -> list[RequestMiddleware]:
            return [Resolver()]

    with pytest.raises(SettingsError, match="stage TENANCY can have one middleware, but a, b all claim it"):
        make_kernel(extra=[("a", Plugin()), ("b", Plugin())])
