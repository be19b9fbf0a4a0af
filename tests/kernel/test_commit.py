"""`after_commit`: work a view hands to others (a job) runs once its tenant transaction committed, and never when
the view's transaction rolled back (a 5xx answer, an exception, a Problem)."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from quart import Blueprint, Request, Response

from kernel import CallNext, Problem, RequestMiddleware, Stage, after_commit, current_kernel, hookimpl, tenant_id_var
from kernel.app import SokoApp, create_app
from kernel.kernel import build_kernel
from kernel.settings import load_raw
from kernel.testing.project import Project
from kernel.testing.services import Database, Servers


class HeaderTenancy(RequestMiddleware):
    stage = Stage.TENANCY

    async def __call__(self, request: Request, call_next: CallNext) -> Response:
        tenant_id_var.set(request.headers.get("x-test-tenant"))
        return await call_next()


class Probe:
    """Views that register an after-commit callback, then succeed, answer 500, or raise."""

    def __init__(self) -> None:
        self.seen: list[tuple[str, bool]] = []

    @hookimpl
    def register_middleware(self) -> list[RequestMiddleware]:
        return [HeaderTenancy()]

    @hookimpl
    def register_blueprints(self) -> list[Blueprint]:
        blueprint = Blueprint("probe", __name__)

        def remember(outcome: str) -> None:
            async def callback() -> None:
                self.seen.append((outcome, current_kernel().in_transaction()))

            after_commit(callback)

        @blueprint.post("/<outcome>")
        async def view(outcome: str) -> tuple[dict[str, str], int]:
            await current_kernel().connection().execute("SELECT 1")
            remember(outcome)
            if outcome == "raise":
                raise RuntimeError("boom")
            if outcome == "problem":
                raise Problem(409, "conflict", "no")
            return {"outcome": outcome}, 500 if outcome == "error" else 200

        return [blueprint]


@pytest.fixture
async def app_and_probe(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, soko_servers: Servers, soko_database: Database
) -> AsyncIterator[tuple[SokoApp, Probe]]:
    env = {
        "SOKO_DATABASE_URL": soko_database.app_url,
        "SOKO_DATABASE_OWNER_URL": soko_database.owner_url,
        "SOKO_REDIS_URL": soko_servers.redis_url,
        "SOKO_QUEUE_NAME": f"soko-test-{uuid.uuid4().hex[:8]}",
    }
    Project(root=tmp_path, env=env).settings().migrate()
    for name, value in env.items() | {"SOKO_ENV": "test"}.items():
        monkeypatch.setenv(name, value)
    probe = Probe()
    soko = create_app(build_kernel(load_raw(tmp_path), extra_plugins=[("probe", probe)]))
    async with soko.test_app():
        yield soko, probe


async def test_after_commit_runs_after_a_commit_only(app_and_probe: tuple[SokoApp, Probe]) -> None:
    app, probe = app_and_probe
    client = app.test_client()
    tenant = {"x-test-tenant": str(uuid.uuid4())}
    statuses = [(await client.post(f"/{outcome}", headers=tenant)).status_code for outcome in ("ok", "error")]
    statuses += [(await client.post(f"/{outcome}", headers=tenant)).status_code for outcome in ("raise", "problem")]
    assert statuses == [200, 500, 500, 409]
    assert probe.seen == [("ok", False)]  # once, outside the committed transaction
