"""Slow request bodies hold nothing (issue 13, item 1): 200 clients trickle a POST body one byte every few seconds
into 2 server processes while normal shop traffic goes on; every normal request is answered, no database
connection sits idle in a transaction, and every slow client gets 408 `request_timeout` once `body_timeout` is up.

On a kernel that opens the tenant transaction before the body is read, the slow clients hold the whole pool and
the normal requests wait until the body timeout: they fail here by their client timeout.
"""

from __future__ import annotations

import asyncio
import json
import statistics
import time
from urllib.parse import urlsplit

import asyncpg
import httpx

from kernel.testing.project import Project
from tests.plugins.commerce.conftest import POOL_MAX, Store, StoreFactory

SLOW_CLIENTS = 200
TRICKLE_EVERY_S = 3.0  # one byte per this many seconds: never done before the server's body timeout (10 s)
DECLARED_BYTES = 64
NORMAL_CLIENTS = 8
NORMAL_FOR_S = 8.0  # normal traffic runs while every slow client is connected and trickling
NORMAL_TIMEOUT_S = 5.0  # a normal request not answered in this long counts as a failure
BODY_TIMEOUT_S = 10.0  # the kernel's default `body_timeout`
IDLE_IN_TRANSACTION = (
    "SELECT count(*) FROM pg_stat_activity WHERE usename = 'soko_app' AND datname = current_database() "
    "AND state LIKE 'idle in transaction%' AND xact_start < now() - interval '1 second'"
)  # a normal request's transaction is idle between its statements too, for milliseconds


async def slow_client(base_url: str, host: str, connected: asyncio.Event, counter: list[int]) -> tuple[int, str]:
    """Send a POST /carts head, then its body one byte at a time until the server answers; its status and code."""
    address = urlsplit(base_url)
    reader, writer = await asyncio.open_connection(address.hostname, address.port)
    head = (
        f"POST /carts HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/json\r\n"
        f"Content-Length: {DECLARED_BYTES}\r\n\r\n{{"
    )
    writer.write(head.encode())
    await writer.drain()
    counter[0] += 1
    if counter[0] == SLOW_CLIENTS:
        connected.set()
    answer = asyncio.create_task(read_response(reader))
    try:
        for _ in range(DECLARED_BYTES - 2):  # never the closing brace: the body stays incomplete
            done, _ = await asyncio.wait([answer], timeout=TRICKLE_EVERY_S)
            if done:
                break
            writer.write(b" ")
            await writer.drain()
        raw = await asyncio.wait_for(answer, timeout=BODY_TIMEOUT_S * 2)
    except TimeoutError:
        raw = (0, "no answer")
    finally:
        answer.cancel()
        writer.close()
    return raw


async def read_response(reader: asyncio.StreamReader) -> tuple[int, str]:
    """The status and problem code of one HTTP/1.1 response with a Content-Length."""
    head = (await reader.readuntil(b"\r\n\r\n")).decode()
    lines = head.split("\r\n")
    length = next(int(line.split(":")[1]) for line in lines if line.lower().startswith("content-length:"))
    body = json.loads(await reader.readexactly(length))
    return int(lines[0].split()[1]), body.get("code", "")


async def normal_traffic(store: Store, until: float, latencies: list[float], failures: list[str]) -> None:
    """What shoppers keep doing meanwhile: open a cart, add to it, read it, list the products."""
    while time.monotonic() < until:
        for method, path, body in (
            ("POST", "/carts", {}),
            ("GET", "/products", None),
        ):
            started = time.perf_counter()
            try:
                response = await store.http.request(
                    method, path, headers=store.host, json=body, timeout=NORMAL_TIMEOUT_S
                )
            except httpx.TimeoutException:
                failures.append(f"{method} {path}: no answer in {NORMAL_TIMEOUT_S} s")
                continue
            latencies.append(time.perf_counter() - started)
            if response.status_code not in (200, 201):
                failures.append(f"{method} {path}: {response.status_code} {response.text[:200]}")


async def test_slow_bodies_hold_no_connection_while_normal_requests_are_served(
    shop: Project, new_store: StoreFactory, superuser: asyncpg.Connection
) -> None:
    with shop.serve("--workers", "2") as server:
        async with httpx.AsyncClient(base_url=server.base_url, timeout=30) as http:
            store = await new_store(http)
            await store.add_product("kikoi", on_hand=100)
            connected, counter = asyncio.Event(), [0]
            started = time.monotonic()
            slow = [
                asyncio.create_task(slow_client(server.base_url, store.host["Host"], connected, counter))
                for _ in range(SLOW_CLIENTS)
            ]
            await asyncio.wait_for(connected.wait(), timeout=30)
            latencies: list[float] = []
            failures: list[str] = []
            held: list[int] = []
            until = time.monotonic() + NORMAL_FOR_S

            async def watch_pool() -> None:
                while time.monotonic() < until:
                    held.append(await superuser.fetchval(IDLE_IN_TRANSACTION))
                    await asyncio.sleep(0.2)

            await asyncio.gather(
                watch_pool(), *(normal_traffic(store, until, latencies, failures) for _ in range(NORMAL_CLIENTS))
            )
            answers = await asyncio.gather(*slow)
            slow_done_s = time.monotonic() - started
    quantiles = statistics.quantiles(latencies, n=100)
    print(
        f"\nslow bodies: {SLOW_CLIENTS} slow clients on 2 processes (pool {POOL_MAX} each), {len(latencies)} normal "
        f"requests from {NORMAL_CLIENTS} clients in {NORMAL_FOR_S} s: p50 {quantiles[49] * 1000:.0f} ms, p99 "
        f"{quantiles[98] * 1000:.0f} ms, max {max(latencies) * 1000:.0f} ms, {len(failures)} failures; transactions "
        f"idle for over 1 s at most {max(held)}; slow clients answered {sorted(set(answers))} after "
        f"{slow_done_s:.1f} s"
    )
    assert failures == []
    assert max(held) == 0, f"connections idle in transaction while bodies trickled in: {held}"
    assert answers == [(408, "request_timeout")] * SLOW_CLIENTS
