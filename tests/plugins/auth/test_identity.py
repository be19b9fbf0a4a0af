"""In-process apps with a helper plugin: the signed-in user's id reaches the labels of jobs a view enqueues (as the
kernel sends them to Redis), and a channel that refuses a code makes the request fail without keeping the code."""

from __future__ import annotations

import json
import uuid

import asyncpg
import pytest
from quart import Blueprint
from redis.asyncio import Redis

from kernel import (
    InboundMessage,
    Kernel,
    MessagingChannel,
    OutboundMessage,
    SendError,
    SendErrorCode,
    SendResult,
    WebhookRequest,
    current_kernel,
    hookimpl,
)
from kernel.app import create_app
from kernel.kernel import build_kernel
from kernel.settings import load_raw
from kernel.testing.project import Project
from plugins.auth.principal import Role
from plugins.auth.runtime import auth_of
from tests.plugins.auth.conftest import Tenant, new_phone


async def noop() -> None:
    """A task that is only enqueued here, never run."""


class JobProbe:
    """A plugin whose one route enqueues a job, as any plugin's view may."""

    @hookimpl
    def register_tasks(self) -> dict[str, object]:
        return {"noop": noop}

    @hookimpl
    def register_blueprints(self) -> list[Blueprint]:
        blueprint = Blueprint("jobprobe", __name__)

        async def enqueue() -> dict[str, str]:
            await current_kernel().task("jobprobe.noop").kiq()
            return {}

        blueprint.add_url_rule("/jobprobe/enqueue", view_func=enqueue, methods=["POST"])
        return [blueprint]


async def test_jobs_enqueued_by_a_signed_in_request_carry_its_user_id(
    project: Project, tenant: Tenant, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name, value in project.environment().items():
        if name.startswith("SOKO_"):
            monkeypatch.setenv(name, value)
    kernel: Kernel = build_kernel(load_raw(project.root), extra_plugins=[("jobprobe", JobProbe())])
    user_id = str(uuid.uuid4())
    token = auth_of(kernel).tokens.issue(user_id, tenant.id, Role.CUSTOMER)
    app = create_app(kernel)
    async with app.test_app() as running:
        response = await running.test_client().post(
            "/jobprobe/enqueue", headers={"Host": tenant.host, "Authorization": f"Bearer {token}"}
        )
        assert response.status_code == 200
    redis = Redis.from_url(project.env["SOKO_REDIS_URL"])
    try:
        entries = await redis.xrange(kernel.settings.queue_name)
    finally:
        await redis.aclose()
    # Only the probe's job: the kernel's own periodic jobs (the webhook inbox sweep) share the stream.
    [labels] = [
        message["labels"]
        for message in (json.loads(fields[b"data"]) for _, fields in entries)
        if message["task_name"].startswith("jobprobe.")
    ]
    assert labels["user_id"] == user_id
    assert labels["tenant_id"] == tenant.id


class RefusingChannel(MessagingChannel):
    """A platform that refuses every message, as one does when its account is misconfigured."""

    name = "refusing"

    async def send(self, message: OutboundMessage) -> SendResult:
        raise SendError(SendErrorCode.MISCONFIGURED, "account suspended", retryable=False)

    async def verify_webhook(self, request: WebhookRequest) -> bool:
        return False

    async def parse_webhook(self, request: WebhookRequest) -> list[InboundMessage]:
        return []


class RefusingPlugin:
    @hookimpl
    def register_messaging_channels(self) -> list[MessagingChannel]:
        return [RefusingChannel()]


async def test_a_code_the_channel_refused_is_a_503_and_is_not_kept(
    project: Project, tenant: Tenant, superuser: asyncpg.Connection, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name, value in project.environment(SOKO_PLUGINS__AUTH__OTP_CHANNEL="refusing").items():
        if name.startswith("SOKO_"):
            monkeypatch.setenv(name, value)
    kernel = build_kernel(load_raw(project.root), extra_plugins=[("refusing", RefusingPlugin())])
    phone = new_phone()
    async with create_app(kernel).test_app() as running:
        response = await running.test_client().post(
            "/auth/otp/request", json={"phone": phone}, headers={"Host": tenant.host}
        )
    assert response.status_code == 503
    assert (await response.get_json())["code"] == "service_unavailable"
    kept = await superuser.fetchval(
        "SELECT count(*) FROM auth_otp_codes WHERE tenant_id = $1::uuid AND phone = $2", tenant.id, phone
    )
    assert kept == 0
