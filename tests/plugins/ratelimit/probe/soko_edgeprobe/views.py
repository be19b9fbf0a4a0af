"""Routes shaped like the ones the policies protect; each answers with the serving process's id."""

from __future__ import annotations

import os
import secrets
from typing import Any

from quart import Blueprint, Response, jsonify, request

from kernel import current_kernel

blueprint = Blueprint("edgeprobe", __name__)


def _served(**extra: Any) -> dict[str, Any]:
    return {"pid": os.getpid(), **extra}


@blueprint.post("/auth/login")
@blueprint.post("/auth/otp/request")
@blueprint.post("/auth/otp/verify")
@blueprint.post("/checkout")
@blueprint.post("/webhooks/probe")
async def stand_in() -> dict[str, Any]:
    """Reads the JSON body as the real view would, after the rate limit did."""
    return _served(body=await request.get_json(silent=True))


@blueprint.get("/probe/<name>")
async def probe(name: str) -> dict[str, Any]:
    """A plain route for test policies to point at; `nonce` is the CSP nonce the view was given."""
    if "security" not in current_kernel().enabled:
        return _served(name=name)
    from plugins.security.public import csp_nonce

    return _served(name=name, nonce=csp_nonce())


@blueprint.get("/boom")
async def boom() -> str:
    raise RuntimeError("failing on purpose")


@blueprint.post("/panel/session")
async def session() -> Response:
    """What the auth plugin will do at a panel login: a session cookie and a readable CSRF token cookie."""
    token = secrets.token_urlsafe(16)
    response = jsonify(csrf=token)
    response.set_cookie("soko_session", secrets.token_urlsafe(16), httponly=True, samesite="Strict")
    response.set_cookie("soko_csrf", token, samesite="Strict")
    return response


@blueprint.post("/panel/orders")
async def change_something() -> dict[str, Any]:
    return _served(changed=True)
