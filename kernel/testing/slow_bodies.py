"""The slow-body attack and the traffic it must not hurt, shared by the test (tests/plugins/commerce) and the
benchmark (benchmarks/bench_slow_bodies.py): many clients trickle a POST body one byte every few seconds, while
normal clients keep shopping; what each side saw, and how many transactions sat idle meanwhile.
"""

from __future__ import annotations

import asyncio
import json
import statistics
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from urllib.parse import urlsplit

import asyncpg
import httpx

# Transactions of the app role idle for over a second: a normal request's transaction is idle between its
# statements too, for milliseconds; one waiting on a client's body would be idle for seconds.
HELD_TRANSACTIONS = (
    "SELECT count(*) FROM pg_stat_activity WHERE usename = $1 AND datname = current_database() "
    "AND state LIKE 'idle in transaction%' AND xact_start < now() - interval '1 second'"
)
NO_ANSWER = (0, "no answer")


@dataclass
class Attack:
    """`clients` POSTs to `path` declaring `declared` bytes, sent one byte per `every_s` and never completed."""

    base_url: str
    host: str
    path: str = "/carts"
    clients: int = 200
    every_s: float = 3.0
    declared: int = 64
    answer_within_s: float = 20.0  # after the last byte sent; then the client counts it as NO_ANSWER


@dataclass
class Outcome:
    latencies: list[float] = field(default_factory=list)  # of the normal requests, seconds
    failures: list[str] = field(default_factory=list)  # normal requests answered otherwise than 2xx, or not at all
    held: list[int] = field(default_factory=list)  # HELD_TRANSACTIONS, sampled while the attack ran
    answers: list[tuple[int, str]] = field(default_factory=list)  # status and problem code of each slow client
    slow_done_s: float = 0.0  # from the first slow connection to the last slow answer

    def summary(self) -> str:
        if len(self.latencies) < 2:
            served = f"{len(self.latencies)} normal requests answered, {len(self.failures)} failures"
        else:
            quantiles = statistics.quantiles(self.latencies, n=100)
            served = (
                f"{len(self.latencies)} normal requests: p50 {quantiles[49] * 1000:.0f} ms, p99 "
                f"{quantiles[98] * 1000:.0f} ms, max {max(self.latencies) * 1000:.0f} ms, {len(self.failures)} failures"
            )
        return (
            f"{served}; transactions idle over 1 s at most {max(self.held, default=0)}; slow clients answered"
            f" {sorted(set(self.answers))} after {self.slow_done_s:.1f} s"
        )

    @property
    def p99_s(self) -> float:
        """p99 of the normal requests' latency; infinite when fewer than two were answered."""
        if len(self.latencies) < 2:
            return float("inf")
        return statistics.quantiles(self.latencies, n=100)[98]


async def read_response(reader: asyncio.StreamReader) -> tuple[int, str]:
    """The status and problem code of one HTTP/1.1 response with a Content-Length."""
    head = (await reader.readuntil(b"\r\n\r\n")).decode()
    lines = head.split("\r\n")
    length = next(int(line.split(":")[1]) for line in lines if line.lower().startswith("content-length:"))
    body = json.loads(await reader.readexactly(length))
    return int(lines[0].split()[1]), str(body.get("code", ""))


async def slow_client(attack: Attack, connected: Callable[[], None]) -> tuple[int, str]:
    """One slow client: the head, then the body a byte at a time (never its end) until the server answers."""
    address = urlsplit(attack.base_url)
    reader, writer = await asyncio.open_connection(address.hostname, address.port)
    head = (
        f"POST {attack.path} HTTP/1.1\r\nHost: {attack.host}\r\nContent-Type: application/json\r\n"
        f"Content-Length: {attack.declared}\r\n\r\n{{"
    )
    writer.write(head.encode())
    await writer.drain()
    connected()
    answer = asyncio.create_task(read_response(reader))
    try:
        for _ in range(attack.declared - 2):  # never the closing brace: the body stays incomplete
            done, _ = await asyncio.wait([answer], timeout=attack.every_s)
            if done:
                break
            writer.write(b" ")
            await writer.drain()
        return await asyncio.wait_for(answer, timeout=attack.answer_within_s)
    except (TimeoutError, ConnectionError, asyncio.IncompleteReadError):
        return NO_ANSWER
    finally:
        answer.cancel()
        writer.close()


async def run(
    attack: Attack,
    normal: Callable[[], Awaitable[httpx.Response]],
    *,
    normal_clients: int,
    normal_for_s: float,
    observer: asyncpg.Connection,
    app_role: str,
) -> Outcome:
    """Connect every slow client, then run `normal_clients` loops of `normal()` for `normal_for_s` seconds,
    sampling the held transactions; then wait for every slow client's answer."""
    outcome = Outcome()
    all_connected = asyncio.Event()
    count = [0]

    def connected() -> None:
        count[0] += 1
        if count[0] == attack.clients:
            all_connected.set()

    started = time.monotonic()
    slow = [asyncio.create_task(slow_client(attack, connected)) for _ in range(attack.clients)]
    await asyncio.wait_for(all_connected.wait(), timeout=60)
    until = time.monotonic() + normal_for_s

    async def shopper() -> None:
        while time.monotonic() < until:
            began = time.perf_counter()
            try:
                response = await normal()
            except httpx.TimeoutException:
                outcome.failures.append("no answer within the client's timeout")
                continue
            outcome.latencies.append(time.perf_counter() - began)
            if not response.is_success:
                outcome.failures.append(f"{response.status_code} {response.text[:200]}")

    async def watch() -> None:
        while time.monotonic() < until:
            outcome.held.append(await observer.fetchval(HELD_TRANSACTIONS, app_role))
            await asyncio.sleep(0.2)

    await asyncio.gather(watch(), *(shopper() for _ in range(normal_clients)))
    outcome.answers = list(await asyncio.gather(*slow))
    outcome.slow_done_s = time.monotonic() - started
    return outcome
