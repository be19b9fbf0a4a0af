"""A Daraja simulator: real HTTP on loopback with Daraja's documented shapes, awkward parts included.

It issues OAuth tokens (`expires_in` as a string), accepts STK pushes (`ResponseCode` "0"), calls back to the
CallBackURL (float `Amount`, a `Balance` item without a value, no `CallbackMetadata` on failure), answers STK
Query with `500.001.1001` until the customer "answered", and registers and simulates C2B payments. The outcome
of a push is chosen by the phone number (`PHONE_OUTCOMES`, any other number succeeds) or per call
(`expect(phone, outcome)`, or `POST /simulator/outcomes`). Counters (`GET /simulator/counters`) let tests see
how many tokens and pushes were asked for.

Run it alone with `python -m plugins.payments_mpesa.simulator --port 8089`; `soko dev` starts it in simulator mode.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import binascii
import logging
import re
import secrets
from collections import Counter, defaultdict, deque
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager, suppress
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any
from urllib.parse import urlsplit

import aiohttp
from aiohttp import web

from plugins.payments_mpesa.daraja import EAT, stk_password, timestamp

log = logging.getLogger(__name__)

# The development shop's credentials: simulator mode uses them for a tenant without credentials of its own. The
# passkey is Safaricom's published sandbox passkey for shortcode 174379, not a secret.
DEV_CREDENTIALS = {
    "consumer_key": "soko-simulator",
    "consumer_secret": "soko-simulator",
    "shortcode": "174379",
    "passkey": "bfb279f9aa9bdbcf158e97dd71a467cd2e0c893059b10f78e6b72ada1ed2c919",
}


class Outcome(StrEnum):
    SUCCESS = "success"
    INSUFFICIENT_FUNDS = "insufficient_funds"  # ResultCode 1
    SUBSCRIBER_LOCKED = "subscriber_locked"  # 1001
    EXPIRED = "expired"  # 1019
    PUSH_ERROR = "push_error"  # 1025
    CANCELLED = "cancelled"  # 1032
    UNREACHABLE = "unreachable"  # 1037
    WRONG_PIN = "wrong_pin"  # 2001
    SYSTEM_ERROR = "system_error"  # 9999
    NO_CALLBACK = "no_callback"  # paid, but the callback never comes: only STK Query tells
    UNANSWERED = "unanswered"  # the customer never answers the prompt: STK Query says 500.001.1001 for ever
    DUPLICATE_CALLBACK = "duplicate_callback"  # paid, and the callback comes twice
    LATE_CALLBACK = "late_callback"  # paid, the callback comes after `late_seconds`


RESULTS: dict[Outcome, tuple[int, str]] = {
    Outcome.INSUFFICIENT_FUNDS: (1, "The balance is insufficient for the transaction."),
    Outcome.SUBSCRIBER_LOCKED: (1001, "Unable to lock subscriber, a transaction is already in process."),
    Outcome.EXPIRED: (1019, "Transaction has expired"),
    Outcome.PUSH_ERROR: (1025, "An error occurred while sending a push request"),
    Outcome.CANCELLED: (1032, "Request cancelled by user"),
    Outcome.UNREACHABLE: (1037, "DS timeout user cannot be reached"),
    Outcome.WRONG_PIN: (2001, "The initiator information is invalid."),
    Outcome.SYSTEM_ERROR: (9999, "Error while sending push request"),
}
SUCCESS_RESULT = (0, "The service request is processed successfully.")

# The phone numbers (MSISDN, as Daraja writes them) whose outcome is fixed; any other number succeeds.
PHONE_OUTCOMES: dict[str, Outcome] = {
    "254700000001": Outcome.INSUFFICIENT_FUNDS,
    "254700001001": Outcome.SUBSCRIBER_LOCKED,
    "254700001019": Outcome.EXPIRED,
    "254700001025": Outcome.PUSH_ERROR,
    "254700001032": Outcome.CANCELLED,
    "254700001037": Outcome.UNREACHABLE,
    "254700002001": Outcome.WRONG_PIN,
    "254700009999": Outcome.SYSTEM_ERROR,
    "254700000404": Outcome.NO_CALLBACK,
    "254700000408": Outcome.UNANSWERED,
    "254700000002": Outcome.DUPLICATE_CALLBACK,
    "254700000003": Outcome.LATE_CALLBACK,
}

_MSISDN = re.compile(r"^254[17]\d{8}$")
_SAFE = re.compile(r"^[A-Za-z0-9 ]*$")


@dataclass
class Push:
    """One accepted STK push and what the simulated customer does with it."""

    checkout_id: str
    merchant_id: str
    shortcode: str
    phone: str
    amount: int
    callback_url: str
    outcome: Outcome
    answered: bool = False  # the customer answered: STK Query now reports the result

    @property
    def result(self) -> tuple[int, str]:
        return RESULTS.get(self.outcome, SUCCESS_RESULT)


@dataclass
class Delivery:
    url: str
    body: dict[str, Any]
    status: int | None  # None: the connection failed


@dataclass
class DarajaSimulator:
    """The simulator's state; `serve()` runs it. Callbacks wait `callback_delay` (late ones `late_seconds`)."""

    callback_delay: float = 0.2
    late_seconds: float = 3.0
    consumers: dict[str, str] = field(
        default_factory=lambda: {DEV_CREDENTIALS["consumer_key"]: DEV_CREDENTIALS["consumer_secret"]}
    )
    passkeys: dict[str, str] = field(default_factory=lambda: {DEV_CREDENTIALS["shortcode"]: DEV_CREDENTIALS["passkey"]})
    counters: Counter[str] = field(default_factory=Counter)
    pushes: dict[str, Push] = field(default_factory=dict)
    deliveries: list[Delivery] = field(default_factory=list)
    c2b_urls: dict[str, tuple[str, str]] = field(default_factory=dict)  # shortcode -> (confirmation, validation)
    _tokens: set[str] = field(default_factory=set)
    _expected: defaultdict[str, deque[Outcome]] = field(default_factory=lambda: defaultdict(deque))
    _tasks: set[asyncio.Task[None]] = field(default_factory=set)

    def add_account(self, consumer_key: str, consumer_secret: str, shortcode: str, passkey: str) -> None:
        """Accept another Daraja app (consumer key and secret) and shortcode (with its passkey)."""
        self.consumers[consumer_key] = consumer_secret
        self.passkeys[shortcode] = passkey

    def expect(self, phone: str, outcome: Outcome | str) -> None:
        """The next push to `phone` (MSISDN or E.164) ends with `outcome`, whatever the table says."""
        self._expected[phone.removeprefix("+")].append(Outcome(outcome))

    # -- the HTTP side ---------------------------------------------------------------------------------------

    def app(self) -> web.Application:
        app = web.Application()
        app.add_routes(
            [
                web.get("/oauth/v1/generate", self._oauth),
                web.post("/mpesa/stkpush/v1/processrequest", self._stk_push),
                web.post("/mpesa/stkpushquery/v1/query", self._stk_query),
                web.post("/mpesa/c2b/v1/registerurl", self._c2b_register),
                web.post("/mpesa/c2b/v1/simulate", self._c2b_simulate),
                web.get("/simulator/counters", self._counters),
                web.post("/simulator/outcomes", self._outcomes),
            ]
        )
        return app

    @asynccontextmanager
    async def serve(self, host: str = "127.0.0.1", port: int = 0) -> AsyncIterator[str]:
        """Listen on `host:port` (0: any free port) and yield the base URL; stop callbacks and server on exit."""
        runner = web.AppRunner(self.app(), access_log=None)
        await runner.setup()
        site = web.TCPSite(runner, host, port)
        try:
            await site.start()
            bound = runner.addresses[0][1]
            async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=10)) as session:
                self._session = session
                try:
                    yield f"http://{host}:{bound}"
                finally:
                    for task in list(self._tasks):
                        task.cancel()
                    for task in list(self._tasks):
                        with suppress(asyncio.CancelledError):
                            await task
        finally:
            await runner.cleanup()

    async def _oauth(self, request: web.Request) -> web.Response:
        self.counters["token_requests"] += 1
        key, secret = _basic(request.headers.get("Authorization", ""))
        if request.query.get("grant_type") != "client_credentials" or self.consumers.get(key) != secret or not key:
            return _error(400, "400.008.01", "Invalid Authentication passed")
        token = secrets.token_urlsafe(24)
        self._tokens.add(token)
        return web.json_response({"access_token": token, "expires_in": "3599"})

    def _authorized(self, request: web.Request) -> bool:
        return request.headers.get("Authorization", "").removeprefix("Bearer ") in self._tokens

    async def _stk_push(self, request: web.Request) -> web.Response:
        self.counters["stk_push_requests"] += 1
        if not self._authorized(request):
            return _error(401, "404.001.03", "Invalid Access Token")
        body = await _json(request)
        if body is None:
            return _error(400, "400.002.02", "Bad Request - Invalid JSON")
        problem = self._check_push(body)
        if problem:
            return _error(400, "400.002.02", f"Bad Request - Invalid {problem}")
        phone = str(body["PhoneNumber"])
        expected = self._expected.get(phone)
        outcome = expected.popleft() if expected else PHONE_OUTCOMES.get(phone, Outcome.SUCCESS)
        push = Push(
            checkout_id=f"ws_CO_{timestamp()}{secrets.token_hex(6)}",
            merchant_id=f"{secrets.randbelow(90000) + 10000}-{secrets.randbelow(10**8)}-1",
            shortcode=str(body["BusinessShortCode"]),
            phone=phone,
            amount=int(body["Amount"]),
            callback_url=str(body["CallBackURL"]),
            outcome=outcome,
        )
        self.pushes[push.checkout_id] = push
        self.counters["stk_pushes"] += 1
        self._spawn(self._customer_answers(push))
        answer = {
            "MerchantRequestID": push.merchant_id,
            "CheckoutRequestID": push.checkout_id,
            "ResponseCode": "0",
            "ResponseDescription": "Success. Request accepted for processing",
            "CustomerMessage": "Success. Request accepted for processing",
        }
        return web.json_response(answer)

    def _check_push(self, body: Mapping[str, Any]) -> str | None:
        """The first field Daraja would refuse, or None."""
        shortcode = str(body.get("BusinessShortCode", ""))
        stamp = str(body.get("Timestamp", ""))
        passkey = self.passkeys.get(shortcode)
        checks = {
            "BusinessShortCode": passkey is not None,
            "Timestamp": re.fullmatch(r"\d{14}", stamp) is not None,
            "Password": passkey is not None and body.get("Password") == stk_password(shortcode, passkey, stamp),
            "TransactionType": body.get("TransactionType") in ("CustomerPayBillOnline", "CustomerBuyGoodsOnline"),
            "Amount": isinstance(body.get("Amount"), int) and body["Amount"] >= 1,
            "PartyA": _MSISDN.match(str(body.get("PartyA", ""))) is not None,
            "PhoneNumber": _MSISDN.match(str(body.get("PhoneNumber", ""))) is not None,
            "CallBackURL": str(body.get("CallBackURL", "")).startswith(("http://", "https://")),
            "AccountReference": _safe(body.get("AccountReference"), 12, required=True),
            "TransactionDesc": _safe(body.get("TransactionDesc"), 13, required=False),
        }
        return next((name for name, ok in checks.items() if not ok), None)

    async def _stk_query(self, request: web.Request) -> web.Response:
        self.counters["stk_query_requests"] += 1
        if not self._authorized(request):
            return _error(401, "404.001.03", "Invalid Access Token")
        body = await _json(request) or {}
        push = self.pushes.get(str(body.get("CheckoutRequestID")))
        shortcode, stamp = str(body.get("BusinessShortCode", "")), str(body.get("Timestamp", ""))
        passkey = self.passkeys.get(shortcode)
        if passkey is None or body.get("Password") != stk_password(shortcode, passkey, stamp):
            return _error(400, "400.002.02", "Bad Request - Invalid Password")
        if push is None or push.shortcode != shortcode:
            return _error(400, "400.002.02", "Bad Request - Invalid CheckoutRequestID")
        if not push.answered:
            return _error(500, "500.001.1001", "The transaction is being processed")
        code, description = push.result
        return web.json_response(
            {
                "ResponseCode": "0",
                "ResponseDescription": "The service request has been accepted successsfully",
                "MerchantRequestID": push.merchant_id,
                "CheckoutRequestID": push.checkout_id,
                "ResultCode": str(code),  # a string here, a number in callbacks
                "ResultDesc": description,
            }
        )

    async def _c2b_register(self, request: web.Request) -> web.Response:
        if not self._authorized(request):
            return _error(401, "404.001.03", "Invalid Access Token")
        body = await _json(request) or {}
        shortcode = str(body.get("ShortCode", ""))
        urls = (str(body.get("ConfirmationURL", "")), str(body.get("ValidationURL", "")))
        if shortcode not in self.passkeys or not all(url.startswith(("http://", "https://")) for url in urls):
            return _error(400, "400.003.02", "Bad Request - Invalid ShortCode or URL")
        self.c2b_urls[shortcode] = urls
        return web.json_response(
            {"OriginatorCoversationID": secrets.token_hex(8), "ResponseCode": "0", "ResponseDescription": "Success"}
        )

    async def _c2b_simulate(self, request: web.Request) -> web.Response:
        """A customer pays the paybill or till from their phone: validation, then confirmation, both POSTed."""
        if not self._authorized(request):
            return _error(401, "404.001.03", "Invalid Access Token")
        body = await _json(request) or {}
        urls = self.c2b_urls.get(str(body.get("ShortCode", "")))
        if urls is None:
            return _error(400, "400.003.02", "Bad Request - no URLs registered for this ShortCode")
        now = datetime.now(EAT)
        payment = {
            "TransactionType": "Pay Bill" if body.get("CommandID") == "CustomerPayBillOnline" else "Buy Goods",
            "TransID": receipt_number(),
            "TransTime": now.strftime("%Y%m%d%H%M%S"),
            "TransAmount": f"{float(body.get('Amount', 0)):.2f}",
            "BusinessShortCode": str(body.get("ShortCode")),
            "BillRefNumber": str(body.get("BillRefNumber", "")),
            "InvoiceNumber": "",
            "OrgAccountBalance": "",
            "ThirdPartyTransID": "",
            "MSISDN": str(body.get("Msisdn", "")),
            "FirstName": "John",
            "MiddleName": "",
            "LastName": "Doe",
        }
        confirmation, validation = urls
        self._spawn(self._c2b_flow(payment, confirmation, validation))
        return web.json_response(
            {
                "OriginatorCoversationID": secrets.token_hex(8),
                "ResponseCode": "0",
                "ResponseDescription": "Accept the service request successfully.",
            }
        )

    async def _counters(self, request: web.Request) -> web.Response:
        return web.json_response(dict(self.counters) | {"deliveries": len(self.deliveries)})

    async def _outcomes(self, request: web.Request) -> web.Response:
        body = await _json(request) or {}
        try:
            self.expect(str(body["phone"]), str(body["outcome"]))
        except (KeyError, ValueError):
            return web.json_response({"error": f"phone and one of {[o.value for o in Outcome]}"}, status=400)
        return web.json_response({"queued": True})

    # -- the simulated customer and Safaricom's callbacks ------------------------------------------------------

    def _spawn(self, coroutine: Any) -> None:
        task = asyncio.get_running_loop().create_task(coroutine)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _customer_answers(self, push: Push) -> None:
        if push.outcome is Outcome.UNANSWERED:
            return
        await asyncio.sleep(self.callback_delay)
        push.answered = True
        if push.outcome is Outcome.NO_CALLBACK:
            return
        if push.outcome is Outcome.LATE_CALLBACK:
            await asyncio.sleep(self.late_seconds)
        body = stk_callback(push)
        await self._deliver(push.callback_url, body)
        if push.outcome is Outcome.DUPLICATE_CALLBACK:
            await self._deliver(push.callback_url, body)

    async def _c2b_flow(self, payment: dict[str, Any], confirmation: str, validation: str) -> None:
        await asyncio.sleep(self.callback_delay)
        await self._deliver(validation, payment)
        await self._deliver(confirmation, payment)

    async def _deliver(self, url: str, body: dict[str, Any]) -> None:
        status: int | None = None
        try:
            async with self._session.post(url, json=body) as response:
                status = response.status
        except (aiohttp.ClientError, TimeoutError):
            # The host only: the path holds the shop's webhook token.
            log.warning("simulated callback could not be delivered", extra={"host": urlsplit(url).netloc})
        self.deliveries.append(Delivery(url, body, status))
        self.counters["callbacks"] += 1


def stk_callback(push: Push) -> dict[str, Any]:
    """The body Daraja POSTs to the CallBackURL when the customer answered."""
    code, description = push.result
    callback: dict[str, Any] = {
        "MerchantRequestID": push.merchant_id,
        "CheckoutRequestID": push.checkout_id,
        "ResultCode": code,
        "ResultDesc": description,
    }
    if code == 0:
        callback["CallbackMetadata"] = {
            "Item": [
                {"Name": "Amount", "Value": float(push.amount)},
                {"Name": "MpesaReceiptNumber", "Value": receipt_number()},
                {"Name": "Balance"},
                {"Name": "TransactionDate", "Value": int(datetime.now(EAT).strftime("%Y%m%d%H%M%S"))},
                {"Name": "PhoneNumber", "Value": int(push.phone)},
            ]
        }
    return {"Body": {"stkCallback": callback}}


def receipt_number() -> str:
    """An M-Pesa receipt as Safaricom writes them: ten capitals and digits, a letter first (`NLJ7RT61SV`)."""
    letters, digits = "ABCDEFGHJKLMNPQRSTUVWXYZ", "0123456789"
    rest = [secrets.choice(letters + digits) for _ in range(8)]
    return secrets.choice(letters) + secrets.choice(digits) + "".join(rest)


def _basic(header: str) -> tuple[str, str]:
    try:
        key, _, secret = base64.b64decode(header.removeprefix("Basic ")).decode().partition(":")
    except (binascii.Error, UnicodeDecodeError):
        return "", ""
    return key, secret


def _safe(value: object, limit: int, *, required: bool) -> bool:
    text = "" if value is None else str(value)
    return (bool(text) or not required) and len(text) <= limit and _SAFE.match(text) is not None


async def _json(request: web.Request) -> dict[str, Any] | None:
    try:
        body = await request.json()
    except ValueError:
        return None
    return body if isinstance(body, dict) else None


def _error(status: int, code: str, message: str) -> web.Response:
    return web.json_response(
        {"requestId": secrets.token_hex(8), "errorCode": code, "errorMessage": message}, status=status
    )


async def _run_forever(port: int) -> None:
    async with DarajaSimulator().serve(port=port) as url:
        log.info("Daraja simulator listening", extra={"url": url})
        await asyncio.Event().wait()


def main() -> None:
    from kernel.logs import configure_logging

    parser = argparse.ArgumentParser(description="soko's Daraja (M-Pesa) simulator, on 127.0.0.1")
    parser.add_argument("--port", type=int, default=8089)
    configure_logging("INFO")
    with suppress(KeyboardInterrupt):
        asyncio.run(_run_forever(parser.parse_args().port))


if __name__ == "__main__":
    main()
