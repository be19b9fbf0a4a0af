"""The Daraja HTTP client: OAuth, STK push and query, C2B URL registration. No Quart, no database.

One `httpx.AsyncClient` per process (opened in the plugin's lifespan) carries every call, with explicit timeouts;
a shop's credentials come with each call, so one client serves every shop.
"""

from __future__ import annotations

import base64
from collections.abc import Mapping
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

import httpx

from kernel import PaymentError, PaymentErrorCode
from plugins.payments_mpesa.codes import STILL_PROCESSING, error_code_for_http
from plugins.payments_mpesa.settings import MpesaCredentials
from plugins.payments_mpesa.tokens import TokenCache

EAT = ZoneInfo("Africa/Nairobi")  # Daraja's timestamps are East Africa Time (UTC+3, no daylight saving)


def timestamp(now: datetime | None = None) -> str:
    """`YYYYMMDDHHmmss` in EAT, as the STK Password and Timestamp fields need it."""
    return (now or datetime.now(EAT)).astimezone(EAT).strftime("%Y%m%d%H%M%S")


def stk_password(shortcode: str, passkey: str, stamp: str) -> str:
    """base64(shortcode + passkey + timestamp): Daraja's proof that the caller knows the shop's passkey."""
    return base64.b64encode(f"{shortcode}{passkey}{stamp}".encode()).decode()


class DarajaClient:
    def __init__(self, http: httpx.AsyncClient, tokens: TokenCache) -> None:
        self._http = http
        self._tokens = tokens

    async def stk_push(self, credentials: MpesaCredentials, **fields: Any) -> dict[str, Any]:
        """Send the PIN prompt; `fields` are Amount, PartyA, PhoneNumber, CallBackURL, AccountReference and
        TransactionDesc. The answer says accepted for processing (ResponseCode "0"), never paid."""
        body = self._signed(credentials) | {
            "TransactionType": credentials.transaction_type,
            "PartyB": credentials.receiver,
            **fields,
        }
        answer = await self._call(credentials, "/mpesa/stkpush/v1/processrequest", body)
        if str(answer.get("ResponseCode")) != "0" or not answer.get("CheckoutRequestID"):
            raise PaymentError(
                PaymentErrorCode.DECLINED,
                str(answer.get("ResponseDescription", "STK push refused")),
                retryable=False,
                provider_code=str(answer.get("ResponseCode")),
            )
        return answer

    async def stk_query(self, credentials: MpesaCredentials, checkout_request_id: str) -> dict[str, Any] | None:
        """Where an STK push stands, or None while Daraja is still processing it (500.001.1001)."""
        body = self._signed(credentials) | {"CheckoutRequestID": checkout_request_id}
        try:
            return await self._call(credentials, "/mpesa/stkpushquery/v1/query", body)
        except PaymentError as error:
            # The same code also says "Merchant does not exist", which is a misconfiguration, not a wait.
            if error.provider_code == STILL_PROCESSING and "merchant" not in error.detail.lower():
                return None
            raise

    async def register_c2b(
        self, credentials: MpesaCredentials, *, confirmation_url: str, validation_url: str
    ) -> dict[str, Any]:
        """Tell Daraja where paybill/till payments to this shortcode are confirmed (and validated, if enabled)."""
        body = {
            "ShortCode": credentials.shortcode,
            "ResponseType": "Completed",  # what Daraja does when the validation URL cannot be reached
            "ConfirmationURL": confirmation_url,
            "ValidationURL": validation_url,
        }
        return await self._call(credentials, "/mpesa/c2b/v1/registerurl", body)

    def _signed(self, credentials: MpesaCredentials) -> dict[str, str]:
        stamp = timestamp()
        password = stk_password(credentials.shortcode, credentials.passkey.get_secret_value(), stamp)
        return {"BusinessShortCode": credentials.shortcode, "Password": password, "Timestamp": stamp}

    async def _call(self, credentials: MpesaCredentials, path: str, body: Mapping[str, Any]) -> dict[str, Any]:
        """POST with a bearer token; once more with a fresh token if Daraja says the cached one is invalid."""
        consumer_key = credentials.consumer_key.get_secret_value()
        for attempt in (1, 2):
            token = await self._tokens.get(consumer_key, lambda: self._fetch_token(credentials))
            response = await self._send("POST", path, json=dict(body), headers={"Authorization": f"Bearer {token}"})
            if response.status_code == 401 and attempt == 1:
                await self._tokens.drop(consumer_key, token)
                continue
            return _answer(response)
        raise AssertionError("unreachable")  # pragma: no cover

    async def _fetch_token(self, credentials: MpesaCredentials) -> tuple[str, int]:
        pair = f"{credentials.consumer_key.get_secret_value()}:{credentials.consumer_secret.get_secret_value()}"
        response = await self._send(
            "GET",
            "/oauth/v1/generate",
            params={"grant_type": "client_credentials"},
            headers={"Authorization": "Basic " + base64.b64encode(pair.encode()).decode()},
        )
        if response.status_code in (400, 401, 403):
            raise PaymentError(
                PaymentErrorCode.MISCONFIGURED, "Daraja refused the consumer key and secret", retryable=False
            )
        answer = _answer(response)
        try:
            return str(answer["access_token"]), int(answer["expires_in"])  # expires_in comes as a string
        except (KeyError, TypeError, ValueError):
            raise PaymentError(PaymentErrorCode.UNAVAILABLE, "unreadable Daraja token", retryable=True) from None

    async def _send(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        try:
            return await self._http.request(method, path, **kwargs)
        except httpx.TimeoutException as error:
            raise PaymentError(PaymentErrorCode.UNAVAILABLE, f"Daraja timed out ({path})", retryable=True) from error
        except httpx.TransportError as error:
            raise PaymentError(PaymentErrorCode.UNAVAILABLE, f"Daraja unreachable ({path})", retryable=True) from error


def _answer(response: httpx.Response) -> dict[str, Any]:
    """The JSON body of a 2xx answer; a `PaymentError` carrying Daraja's errorCode otherwise."""
    try:
        body = response.json()
    except ValueError:
        body = None
    if not isinstance(body, dict):
        code, retryable = error_code_for_http(response.status_code)
        if response.is_success:
            code, retryable = PaymentErrorCode.UNAVAILABLE, True
        raise PaymentError(code, f"Daraja answered {response.status_code} without JSON", retryable=retryable)
    if response.is_success:
        return body
    code, retryable = error_code_for_http(response.status_code)
    raise PaymentError(
        code,
        str(body.get("errorMessage", "")),
        retryable=retryable,
        provider_code=str(body.get("errorCode")) if body.get("errorCode") else None,
    )
