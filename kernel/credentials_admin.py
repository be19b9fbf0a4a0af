"""`PUT|GET /admin/credentials/<receiver>`: a shop's staff manage their own store's credentials.

Served only when the auth plugin is enabled: its `admin_routes` (`/admin/*` by default) admit staff of the
request's tenant alone, and without it nobody could be told apart from staff. The tenant is the request's; the
answer shows the credentials with every secret masked, so a secret, once written, is never read back.
"""

from __future__ import annotations

from typing import Any

from pydantic import ValidationError
from quart import Blueprint, request

from kernel import current_kernel
from kernel.context import tenant_id_var
from kernel.credentials import UnknownReceiver, masked
from kernel.openapi import field_errors
from kernel.problems import Problem


def credentials_admin_blueprint() -> Blueprint:
    blueprint = Blueprint("credentials_admin", __name__, url_prefix="/admin/credentials")
    blueprint.add_url_rule("/<receiver>", view_func=show_credentials, methods=["GET"])
    blueprint.add_url_rule("/<receiver>", view_func=put_credentials, methods=["PUT"])
    return blueprint


async def show_credentials(receiver: str) -> dict[str, Any]:
    found = await _stored(receiver, None)
    if found is None:
        raise Problem(404, "credentials_not_found", f"This store has no credentials for {receiver!r}.")
    return found


async def put_credentials(receiver: str) -> dict[str, Any]:
    body = await request.get_json()
    if not isinstance(body, dict):
        raise Problem(400, "validation_error", "Send the credentials as one JSON object.")
    stored = await _stored(receiver, body)
    assert stored is not None
    return stored


async def _stored(receiver: str, values: dict[str, Any] | None) -> dict[str, Any] | None:
    tenant_id = tenant_id_var.get()
    if tenant_id is None:
        raise Problem(400, "tenant_required", "Credentials belong to a store: call this on the store's host.")
    store = current_kernel().credentials
    try:
        if values is None:
            found = await store.get(tenant_id, receiver)
        else:
            found = await store.put(tenant_id, receiver, values)
    except UnknownReceiver as error:
        raise Problem(404, "receiver_not_found", str(error)) from None
    except ValidationError as error:
        errors = field_errors(error, source="body")
        raise Problem(400, "validation_error", "The credentials are not valid: see `errors`.", errors=errors) from None
    return None if found is None else masked(found)
