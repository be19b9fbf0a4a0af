"""A stand-in for Meta's Graph API (WhatsApp Cloud API), served over real HTTP on loopback.

`mode: simulator` points the plugin here, `soko dev` starts it (the `dev_services` hook), and the tests drive it as a
separate process (`python -m plugins.messaging_whatsapp.simulator --port N --app-secret S --webhook-url U`).

What it does, as the Cloud API does (anchors §3):
- `POST /<version>/<phone_number_id>/messages`: text, template and interactive (reply buttons, lists) sends, checked
  as Meta checks them; a bearer token is required. Accepted sends answer `{"messages": [{"id": "wamid..."}]}`.
- Graph error bodies (`{"error": {message, type, code, error_data: {details}, fbtrace_id}}`) for the codes a test
  programs, per recipient number (the next N calls to that number fail) or for the next calls to anyone.
- Status webhooks (sent, delivered, read) signed with `X-Hub-Signature-256` over the exact bytes it POSTs, with
  non-ASCII escaped as Meta escapes it; optionally duplicated and shuffled, and on demand in any order.
- Inbound customer messages on demand, to any phone number id.

Control routes under `/_sim/` let tests in other processes program failures, read what was accepted, and trigger
webhooks. The simulator keeps everything in memory: a restart forgets.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import hmac
import json
import logging
import random
import secrets
import time
from collections import defaultdict, deque
from collections.abc import AsyncIterator, Iterable, Mapping, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

from aiohttp import ClientSession, ClientTimeout, web

log = logging.getLogger("soko.whatsapp.simulator")

# Graph error code -> (HTTP status, title), as the Cloud API reports them.
ERRORS: dict[int, tuple[int, str]] = {
    4: (429, "(#4) Application request limit reached"),
    190: (401, "Error validating access token: Session has expired"),
    80007: (429, "(#80007) Rate limit issues"),
    130429: (429, "(#130429) Rate limit hit"),
    131026: (400, "(#131026) Message undeliverable"),
    131047: (400, "(#131047) Re-engagement message"),
    131050: (400, "(#131050) User has stopped marketing messages"),
    131056: (429, "(#131056) (Business Account, Consumer Account) pair rate limit hit"),
    132000: (400, "(#132000) Number of parameters does not match the expected number of params"),
    132001: (400, "(#132001) Template name does not exist in the translation"),
    100: (400, "(#100) Invalid parameter"),
    131000: (500, "(#131000) Something went wrong"),
}
SERVER_ERROR = 131000  # programmed as "500": the 5xx a flaky Graph answers
MAX_BUTTONS = 3
MAX_SECTIONS = 10
MAX_TEXT = 4096


@dataclass
class Accepted:
    """One message Meta took: what a test reads back."""

    id: str
    phone_number_id: str
    to: str
    type: str
    payload: dict[str, Any]
    callback_data: str | None
    at: float
    answered: bool = False  # whether the send's HTTP answer went out (a programmed delay holds it back)


@dataclass
class SimulatorState:
    app_secret: bytes
    webhook_url: str | None
    # Statuses sent after each accepted message, in this order (empty: none until asked for).
    auto_statuses: tuple[str, ...] = ("sent", "delivered", "read")
    duplicate_statuses: bool = False
    shuffle_statuses: bool = False
    accepted: list[Accepted] = field(default_factory=list)
    failures_by_recipient: dict[str, deque[int]] = field(default_factory=lambda: defaultdict(deque))
    failures_next: deque[int] = field(default_factory=deque)
    delays_by_recipient: dict[str, float] = field(default_factory=dict)
    attempts: int = 0
    webhook_answers: list[int] = field(default_factory=list)
    tasks: set[asyncio.Task[None]] = field(default_factory=set)


class GraphError(Exception):
    def __init__(self, code: int, details: str = "") -> None:
        super().__init__(code)
        self.code = code
        self.details = details


def graph_error_body(code: int, details: str = "") -> tuple[int, dict[str, Any]]:
    status, title = ERRORS.get(code, ERRORS[100])
    body = {
        "error": {
            "message": title,
            "type": "OAuthException",
            "code": code,
            "error_data": {"messaging_product": "whatsapp", "details": details or title},
            "fbtrace_id": secrets.token_urlsafe(12),
        }
    }
    return status, body


def signed_body(document: Mapping[str, Any], app_secret: bytes) -> tuple[bytes, str]:
    """The exact bytes Meta would POST (non-ASCII escaped as `\\uXXXX`) and their `X-Hub-Signature-256`."""
    body = json.dumps(document, ensure_ascii=True, separators=(",", ":")).encode()
    return body, "sha256=" + hmac.new(app_secret, body, hashlib.sha256).hexdigest()


def webhook_document(phone_number_id: str, value: Mapping[str, Any]) -> dict[str, Any]:
    """The envelope every Cloud API webhook has: one entry (the WABA), one `messages` change."""
    return {
        "object": "whatsapp_business_account",
        "entry": [
            {
                "id": f"waba-{phone_number_id}",
                "changes": [
                    {
                        "field": "messages",
                        "value": {
                            "messaging_product": "whatsapp",
                            "metadata": {"display_phone_number": "15550000000", "phone_number_id": phone_number_id},
                            **value,
                        },
                    }
                ],
            }
        ],
    }


def status_value(message: Accepted, status: str, error_code: int | None = None) -> dict[str, Any]:
    entry: dict[str, Any] = {
        "id": message.id,
        "status": status,
        "timestamp": str(int(time.time())),
        "recipient_id": message.to,
    }
    if message.callback_data is not None:
        entry["biz_opaque_callback_data"] = message.callback_data
    if error_code is not None:
        _, body = graph_error_body(error_code)
        entry["errors"] = [{"code": error_code, "title": body["error"]["message"]}]
    return {"statuses": [entry]}


def inbound_value(sender: str, text: str, name: str = "Customer") -> tuple[str, dict[str, Any]]:
    wamid = "wamid." + secrets.token_urlsafe(24)
    value = {
        "contacts": [{"profile": {"name": name}, "wa_id": sender}],
        "messages": [
            {"from": sender, "id": wamid, "timestamp": str(int(time.time())), "type": "text", "text": {"body": text}}
        ],
    }
    return wamid, value


def check_message(payload: Any) -> None:
    """Refuse what the Cloud API refuses (code 100), so the plugin's request shapes are tested, not assumed."""
    if not isinstance(payload, dict) or payload.get("messaging_product") != "whatsapp":
        raise GraphError(100, "messaging_product must be whatsapp")
    to = payload.get("to")
    if not isinstance(to, str) or not to.isdigit():
        raise GraphError(100, "to must be the recipient's number in digits")
    kind = payload.get("type", "text")
    content = payload.get(kind)
    if not isinstance(content, dict):
        raise GraphError(100, f"the {kind} object is required")
    if kind == "text":
        body = content.get("body")
        if not isinstance(body, str) or not body or len(body) > MAX_TEXT:
            raise GraphError(100, "text.body must be 1-4096 characters")
    elif kind == "template":
        language = content.get("language")
        if not content.get("name") or not isinstance(language, dict) or not language.get("code"):
            raise GraphError(100, "template.name and template.language.code are required")
        if not isinstance(content.get("components", []), list):
            raise GraphError(100, "template.components must be a list")
    elif kind == "interactive":
        _check_interactive(content)
    else:
        raise GraphError(100, f"type {kind!r} is not supported by this simulator")


def _check_interactive(content: Mapping[str, Any]) -> None:
    action = content.get("action")
    body = content.get("body")
    if not isinstance(action, dict) or not isinstance(body, dict) or not body.get("text"):
        raise GraphError(100, "interactive.body.text and interactive.action are required")
    if content.get("type") == "button":
        buttons = action.get("buttons")
        if not isinstance(buttons, list) or not 1 <= len(buttons) <= MAX_BUTTONS:
            raise GraphError(100, "interactive buttons: 1 to 3 reply buttons")
        ids = [button.get("reply", {}).get("id") for button in buttons]
        if not all(ids) or len(set(ids)) != len(ids):
            raise GraphError(100, "every reply button needs a distinct id")
    elif content.get("type") == "list":
        sections = action.get("sections")
        if not action.get("button") or not isinstance(sections, list) or not 1 <= len(sections) <= MAX_SECTIONS:
            raise GraphError(100, "interactive list: a button label and 1 to 10 sections")
        if not all(isinstance(section.get("rows"), list) and section["rows"] for section in sections):
            raise GraphError(100, "every list section needs rows")
    else:
        raise GraphError(100, "interactive.type must be button or list")


def build_app(state: SimulatorState) -> web.Application:
    app = web.Application(client_max_size=4 * 1024 * 1024)
    routes = web.RouteTableDef()

    @routes.post("/{version}/{phone_number_id}/messages")
    async def send(request: web.Request) -> web.Response:
        state.attempts += 1
        if not request.headers.get("Authorization", "").startswith("Bearer "):
            return web.json_response(graph_error_body(190)[1], status=401)
        try:
            payload = await request.json()
            check_message(payload)
            code = _programmed_failure(state, payload["to"])
            if code is not None:
                raise GraphError(code)
        except json.JSONDecodeError:
            status, body = graph_error_body(100, "the body is not JSON")
            return web.json_response(body, status=status)
        except GraphError as error:
            status, body = graph_error_body(error.code, error.details)
            return web.json_response(body, status=status)
        message = Accepted(
            id="wamid." + secrets.token_urlsafe(24),
            phone_number_id=request.match_info["phone_number_id"],
            to=payload["to"],
            type=payload.get("type", "text"),
            payload=payload,
            callback_data=payload.get("biz_opaque_callback_data"),
            at=time.time(),
        )
        state.accepted.append(message)  # taken before answering: a client that dies now has still sent it
        _spawn(state, _post_statuses(state, message, _auto_sequence(state)))
        delay = state.delays_by_recipient.get(message.to)
        if delay:
            await asyncio.sleep(delay)
        message.answered = True
        return web.json_response(
            {"messaging_product": "whatsapp", "contacts": [{"input": message.to, "wa_id": message.to}],
             "messages": [{"id": message.id}]}
        )  # fmt: skip

    @routes.get("/_sim/messages")
    async def accepted(request: web.Request) -> web.Response:
        to = request.query.get("to")
        found = [vars(message) for message in state.accepted if to is None or message.to == to.lstrip("+")]
        return web.json_response({"count": len(found), "attempts": state.attempts, "messages": found})

    @routes.post("/_sim/failures")
    async def program_failures(request: web.Request) -> web.Response:
        """`{"to": "+2547...", "codes": [131056, 131056]}`, or without `to` for the next calls to anyone."""
        document = await request.json()
        codes = [SERVER_ERROR if int(code) == 500 else int(code) for code in document["codes"]]
        to = document.get("to")
        (state.failures_by_recipient[to.lstrip("+")] if to else state.failures_next).extend(codes)
        return web.json_response({"programmed": len(codes)})

    @routes.post("/_sim/delays")
    async def program_delay(request: web.Request) -> web.Response:
        """`{"to": "+2547...", "seconds": 5}`: accept sends to that number at once but answer late."""
        document = await request.json()
        state.delays_by_recipient[document["to"].lstrip("+")] = float(document["seconds"])
        return web.json_response({"ok": True})

    @routes.post("/_sim/settings")
    async def program_settings(request: web.Request) -> web.Response:
        document = await request.json()
        if "auto_statuses" in document:
            state.auto_statuses = tuple(document["auto_statuses"])
        state.duplicate_statuses = bool(document.get("duplicate_statuses", state.duplicate_statuses))
        state.shuffle_statuses = bool(document.get("shuffle_statuses", state.shuffle_statuses))
        state.webhook_url = document.get("webhook_url", state.webhook_url)
        return web.json_response({"ok": True})

    @routes.post("/_sim/statuses")
    async def post_statuses(request: web.Request) -> web.Response:
        """`{"id": "wamid...", "sequence": ["read", "delivered", "sent"], "error_code": 131026}`, sent in order."""
        document = await request.json()
        message = next((item for item in state.accepted if item.id == document["id"]), None)
        if message is None:
            return web.json_response({"error": "no such message"}, status=404)
        answers = await _post_statuses(state, message, document["sequence"], document.get("error_code"))
        return web.json_response({"answers": answers})

    @routes.post("/_sim/inbound")
    async def post_inbound(request: web.Request) -> web.Response:
        """`{"phone_number_id": "...", "from": "+2547...", "text": "..."}`: a customer writes to a shop."""
        document = await request.json()
        wamid, value = inbound_value(document["from"].lstrip("+"), document["text"])
        answer = await _post_webhook(state, webhook_document(document["phone_number_id"], value))
        return web.json_response({"id": wamid, "answer": answer})

    @routes.get("/_sim/webhook_answers")
    async def webhook_answers(request: web.Request) -> web.Response:
        return web.json_response({"answers": state.webhook_answers})

    app.add_routes(routes)
    return app


def _programmed_failure(state: SimulatorState, to: str) -> int | None:
    for queue in (state.failures_by_recipient.get(to), state.failures_next):
        if queue:
            return queue.popleft()
    return None


def _auto_sequence(state: SimulatorState) -> list[str]:
    sequence = list(state.auto_statuses)
    if state.duplicate_statuses:
        sequence += sequence
    if state.shuffle_statuses:
        random.shuffle(sequence)
    return sequence


def _spawn(state: SimulatorState, coroutine: Any) -> None:
    task = asyncio.ensure_future(coroutine)
    state.tasks.add(task)
    task.add_done_callback(state.tasks.discard)


async def _post_statuses(
    state: SimulatorState, message: Accepted, sequence: Sequence[str], error_code: int | None = None
) -> list[int | None]:
    answers = []
    for status in sequence:
        code = error_code if status == "failed" else None
        answers.append(
            await _post_webhook(state, webhook_document(message.phone_number_id, status_value(message, status, code)))
        )
    return answers


async def _post_webhook(state: SimulatorState, document: Mapping[str, Any]) -> int | None:
    """POST one signed webhook; the answer's status, or None when nobody listens (Meta would retry later)."""
    if not state.webhook_url:
        return None
    body, signature = signed_body(document, state.app_secret)
    headers = {"Content-Type": "application/json", "X-Hub-Signature-256": signature}
    try:
        async with (
            ClientSession(timeout=ClientTimeout(total=10)) as session,
            session.post(state.webhook_url, data=body, headers=headers) as response,
        ):
            state.webhook_answers.append(response.status)
            return response.status
    except (OSError, TimeoutError) as error:
        log.warning("simulator webhook not delivered", extra={"error": type(error).__name__})
        return None


@asynccontextmanager
async def serve(
    *,
    host: str = "127.0.0.1",
    port: int = 0,
    app_secret: str,
    webhook_url: str | None = None,
    auto_statuses: Iterable[str] = ("sent", "delivered", "read"),
) -> AsyncIterator[str]:
    """Run the simulator until the block exits; yields its base URL (`http://127.0.0.1:PORT`)."""
    state = SimulatorState(app_secret.encode(), webhook_url, tuple(auto_statuses))
    runner = web.AppRunner(build_app(state), access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, host, port)
    await site.start()
    bound_host, bound_port = runner.addresses[0][:2]
    try:
        yield f"http://{bound_host}:{bound_port}"
    finally:
        for task in list(state.tasks):
            task.cancel()
        await runner.cleanup()


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Graph API (WhatsApp Cloud API) simulator for soko")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--app-secret", required=True)
    parser.add_argument("--webhook-url")
    parser.add_argument("--auto-statuses", default="sent,delivered,read", help="comma-separated; empty for none")
    args = parser.parse_args(argv)
    statuses = [item for item in args.auto_statuses.split(",") if item]

    async def run() -> None:
        async with serve(
            host=args.host,
            port=args.port,
            app_secret=args.app_secret,
            webhook_url=args.webhook_url,
            auto_statuses=statuses,
        ):
            logging.getLogger().info("simulator listening")
            await asyncio.Event().wait()

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    asyncio.run(run())


if __name__ == "__main__":
    main()
