"""An absolute-form request target (`GET http://beta.localhost/... HTTP/1.1`) names the authority the request is
for, and RFC 9112 (3.2.2) says it wins over Host. soko resolves tenants by Host, so a target whose authority is
another host than Host is refused (400 `host_mismatch`) instead of being served for the Host's store: a proxy
that routes by the target and soko that scopes by Host would otherwise disagree about which store this is.
Issue 13, item 10; over a real `soko serve`, with raw HTTP/1.1 (clients do not send this form to an origin).
"""

from __future__ import annotations

import asyncio
import json
from urllib.parse import urlsplit

import asyncpg

from kernel.testing.project import Project
from tests.plugins.tenancy.conftest import create_tenant


async def raw_get(base_url: str, target: str, host: str) -> tuple[int, dict[str, object]]:
    """One GET with exactly this request target and Host header; the status and the JSON body."""
    address = urlsplit(base_url)
    reader, writer = await asyncio.open_connection(address.hostname, address.port)
    try:
        writer.write(f"GET {target} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n".encode())
        await writer.drain()
        raw = await asyncio.wait_for(reader.read(), timeout=10)
    finally:
        writer.close()
    head, _, body = raw.partition(b"\r\n\r\n")
    return int(head.split()[1]), json.loads(body)


async def test_an_absolute_target_naming_another_host_is_refused(
    project: Project, superuser: asyncpg.Connection
) -> None:
    alpha, beta = await create_tenant(superuser, items=1), await create_tenant(superuser, items=1)
    with project.serve() as server:
        port = urlsplit(server.base_url).port
        mismatched = await raw_get(server.base_url, f"http://{beta.host}/probe/items", alpha.host)
        other_port = await raw_get(server.base_url, f"http://{alpha.host}:1/probe/items", f"{alpha.host}:{port}")
        same = await raw_get(server.base_url, f"http://{alpha.host.upper()}/probe/items", alpha.host)
        origin_form = await raw_get(server.base_url, "/probe/items", alpha.host)
    for status, body in (mismatched, other_port):
        assert (status, body["code"]) == (400, "host_mismatch"), body
    assert same[0] == 200 and same[1]["tenant"] == alpha.id, same
    assert origin_form[0] == 200 and origin_form[1]["tenant"] == alpha.id, origin_form
