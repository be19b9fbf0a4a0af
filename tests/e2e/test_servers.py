"""What `soko serve` guarantees on either ASGI server of the `server` setting, against real processes: several
processes on one port, the peer's address as the client (never X-Forwarded-For), the body size limit, the body and
keep-alive timeouts, and no `server` header. (Draining and a failed startup: test_shutdown.py, on both.)"""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from kernel.testing.project import Project, Running, wait_for

SERVERS = ("hypercorn", "uvicorn")
BODY_LIMIT = 2048
BODY_TIMEOUT_S = 1.0
KEEP_ALIVE_S = 5  # kernel.servers.KEEP_ALIVE_S


@pytest.fixture(params=SERVERS)
def server_name(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def served(server_name: str, soko_project: Project, probe_site: Path) -> Iterator[Running]:
    soko_project.env |= {
        "PYTHONPATH": str(probe_site),
        "SOKO_SERVER": server_name,
        "SOKO_MAX_BODY_BYTES": str(BODY_LIMIT),
        "SOKO_BODY_TIMEOUT": str(BODY_TIMEOUT_S),
    }
    soko_project.settings(["slowprobe"]).migrate()
    with soko_project.serve("--workers", "2") as server:
        yield server


def _children(pid: int) -> list[int]:
    return [int(child) for child in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]


def _port(server: Running) -> int:
    return int(server.base_url.rsplit(":", 1)[1])


def test_two_processes_answer_on_one_port_without_a_server_header(served: Running, server_name: str) -> None:
    wait_for(lambda: len(_children(served.process.pid)) >= 2, timeout=30, what="two server processes")
    with httpx.Client(base_url=served.base_url, timeout=10) as http:
        answers = [http.get("/healthz", headers={"Connection": "close"}) for _ in range(20)]
    assert all(answer.status_code == 200 for answer in answers)
    assert not any("server" in answer.headers for answer in answers)
    assert f"with 2 {server_name} process(es)" in served.log()


def test_the_client_address_is_the_peer_whatever_x_forwarded_for_claims(served: Running) -> None:
    answer = httpx.get(f"{served.base_url}/slowprobe/peer", headers={"X-Forwarded-For": "203.0.113.9"}, timeout=10)
    assert answer.status_code == 200, answer.text
    assert answer.json() == {"remote_addr": "127.0.0.1"}


def test_a_body_over_the_limit_is_413_and_one_at_it_is_read(served: Running) -> None:
    with httpx.Client(base_url=served.base_url, timeout=10) as http:
        at_limit = http.post("/slowprobe/echo", content=b"x" * BODY_LIMIT)
        over = http.post("/slowprobe/echo", content=b"x" * (BODY_LIMIT + 1))
    assert at_limit.status_code == 200 and at_limit.json() == {"bytes": BODY_LIMIT}, at_limit.text
    assert over.status_code == 413, over.text
    assert over.headers["content-type"] == "application/problem+json"


def test_a_body_that_stalls_is_408_after_the_body_timeout(served: Running) -> None:
    with socket.create_connection(("127.0.0.1", _port(served)), timeout=15) as client:
        client.sendall(b"POST /slowprobe/echo HTTP/1.1\r\nHost: localhost\r\nContent-Length: 100\r\n\r\nhalf")
        started = time.monotonic()
        reply = _read_until_closed_or_answered(client)
    took = time.monotonic() - started
    assert reply.startswith(b"HTTP/1.1 408"), reply[:300]
    assert b'"code": "request_timeout"' in reply or b'"code":"request_timeout"' in reply
    assert BODY_TIMEOUT_S * 0.8 <= took < BODY_TIMEOUT_S + 5, took


def test_an_idle_keep_alive_connection_is_closed_after_the_keep_alive_timeout(served: Running) -> None:
    with socket.create_connection(("127.0.0.1", _port(served)), timeout=KEEP_ALIVE_S + 10) as client:
        client.sendall(b"GET /healthz HTTP/1.1\r\nHost: localhost\r\n\r\n")
        answer = _read_response(client)
        assert answer.startswith(b"HTTP/1.1 200"), answer[:300]
        idle_from = time.monotonic()
        assert client.recv(65536) == b"", "the server closes the idle connection"  # blocks until it does
    idle = time.monotonic() - idle_from
    assert KEEP_ALIVE_S - 1 <= idle < KEEP_ALIVE_S + 5, idle


def _read_response(client: socket.socket) -> bytes:
    """One whole response (head, then Content-Length bytes of body), however the server splits it."""
    reply = b""
    while b"\r\n\r\n" not in reply:
        reply += client.recv(65536)
    head, _, body = reply.partition(b"\r\n\r\n")
    length = next(
        int(line.split(b":", 1)[1]) for line in head.split(b"\r\n") if line.lower().startswith(b"content-length:")
    )
    while len(body) < length:
        body += client.recv(65536)
    return head + b"\r\n\r\n" + body


def _read_until_closed_or_answered(client: socket.socket) -> bytes:
    """Everything the server sends until it closes, or until a whole problem body has arrived."""
    reply = b""
    while chunk := client.recv(65536):
        reply += chunk
        if reply.rstrip().endswith(b"}"):
            break
    return reply
