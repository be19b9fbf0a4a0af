"""`soko tenants` as an operator runs it, and the demo store `soko dev` seeds and serves."""

from __future__ import annotations

import json
import uuid

import httpx

from kernel.testing.project import Project, free_port, wait_for
from plugins.tenancy.public import TenantStatus, list_tenants
from tests.plugins.tenancy.conftest import KernelFactory


def test_create_list_and_refusals(project: Project) -> None:
    slug = f"duka-{uuid.uuid4().hex[:8]}"
    created = project.run("tenants", "create", f" {slug.upper()} ", "--name", "Duka", "--domain", f"{slug}.co.ke")
    assert created.returncode == 0, created.stderr
    assert f"{slug} " in created.stdout and "active" in created.stdout and f"domains: {slug}.co.ke" in created.stdout

    listed = project.run("tenants", "list", "--json")
    assert listed.returncode == 0, listed.stderr
    mine = [tenant for tenant in json.loads(listed.stdout) if tenant["slug"] == slug]
    assert [(t["name"], t["status"], t["domains"]) for t in mine] == [("Duka", "active", [f"{slug}.co.ke"])]

    # The registry's refusals are the admin API's (test_admin_api.py); here, that the CLI reports them.
    for args, message in [
        (["create", slug, "--name", "Again"], "slug_taken: Another tenant has this slug."),
        (["create", "!!!", "--name", "Nothing"], "validation_error: '!!!' is not a usable slug"),
        (["suspend", "no-such-tenant"], "not_found: No tenant has this id or slug."),
    ]:
        result = project.run("tenants", *args)
        assert (args, result.returncode) == (args, 1)
        assert message in result.stderr


def test_the_tenants_commands(project: Project) -> None:
    commands = project.run("tenants", "--help").stdout
    for command in ("create", "list", "suspend", "activate", "add-domain", "remove-domain"):
        assert command in commands


def test_soko_dev_serves_the_demo_store_as_demo_localhost(project: Project) -> None:
    """`soko dev` on the test servers (their URLs are set, so nothing embedded starts): migrate, seed, serve."""
    port = free_port()
    dev = project.start("dev", name="dev", SOKO_BIND=f"127.0.0.1:{port}")
    try:
        wait_for(lambda: _answers(f"http://127.0.0.1:{port}/healthz"), timeout=60, what=f"soko dev\n{dev.log()}")
        demo = httpx.get(f"http://127.0.0.1:{port}/probe/items", headers={"Host": "demo.localhost"})
    finally:
        dev.stop()
    assert demo.status_code == 200, demo.text
    listed = json.loads(project.run("tenants", "list", "--json").stdout)
    assert [(t["name"], t["status"]) for t in listed if t["slug"] == "demo"] == [("Demo store", "active")]


async def test_dev_seed_is_safe_to_run_on_every_start(make_kernel: KernelFactory) -> None:
    kernel = make_kernel()
    async with kernel.running():
        for _ in range(2):
            await kernel.emit("dev_seed")
        demos = [tenant for tenant in await list_tenants() if tenant.slug == "demo"]
    assert [(tenant.name, tenant.status) for tenant in demos] == [("Demo store", TenantStatus.ACTIVE)]


def _answers(url: str) -> bool:
    try:
        return httpx.get(url, timeout=1).status_code == 200
    except httpx.TransportError:
        return False
