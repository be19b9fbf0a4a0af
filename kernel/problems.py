"""RFC 9457 problem details: the one shape every error response of soko takes.

A `Problem` is raised anywhere (view, middleware, plugin) and rendered by the kernel. The stable machine-readable
part is `code`; `type` stays `about:blank`, so `title` is the HTTP status phrase as the RFC asks.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from http import HTTPStatus
from typing import Any

from quart import Response

from kernel.context import request_id_var

PROBLEM_JSON = "application/problem+json"

_CODE_FOR_STATUS = {
    400: "validation_error",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    408: "request_timeout",
    413: "payload_too_large",
    415: "unsupported_media_type",
    429: "rate_limited",
    503: "service_unavailable",
}


class Problem(Exception):
    """An error meant for the client: status, stable code, and a detail safe to show."""

    def __init__(
        self,
        status: int,
        code: str,
        detail: str | None = None,
        *,
        headers: Mapping[str, str] | None = None,
        **extensions: Any,
    ) -> None:
        super().__init__(detail or code)
        self.status = status
        self.code = code
        self.detail = detail
        self.headers = dict(headers or {})
        self.extensions = extensions

    @classmethod
    def for_status(cls, status: int, detail: str | None = None, **kwargs: Any) -> Problem:
        """The problem a bare HTTP status stands for (404 -> `not_found`, ...)."""
        code = _CODE_FOR_STATUS.get(status, "internal_error" if status >= 500 else "bad_request")
        return cls(status, code, detail, **kwargs)

    def body(self) -> dict[str, Any]:
        document: dict[str, Any] = {
            "type": "about:blank",
            "title": _status_phrase(self.status),
            "status": self.status,
            "code": self.code,
        }
        if self.detail:
            document["detail"] = self.detail
        document.update(self.extensions)
        request_id = request_id_var.get()
        if request_id:
            document["request_id"] = request_id
        return document

    def to_response(self) -> Response:
        response = Response(json.dumps(self.body()), status=self.status, content_type=PROBLEM_JSON)
        response.headers.update(self.headers)
        return response


def _status_phrase(status: int) -> str:
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return "Error"
