"""`GET /outbox/messages`, in development only: the demo store's messages, for a developer signing in by code.

It is never registered in any other environment: the outbox holds sign-in codes.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from pydantic import BaseModel, Field
from quart import Blueprint

from kernel import MobileNumber, Model, current_kernel, validate_querystring, validate_response
from plugins.outbox.channel import recent
from plugins.outbox.settings import OutboxSettings


class MessagesQuery(Model):
    to: MobileNumber | None = None
    limit: int | None = Field(default=None, ge=1, le=500)


class StoredMessage(BaseModel):
    id: str
    recipient: str
    body: str | None
    template: dict[str, Any] | None
    idempotency_key: str
    created_at: datetime


class Messages(BaseModel):
    messages: list[StoredMessage]


def outbox_blueprint() -> Blueprint:
    blueprint = Blueprint("outbox", __name__)
    blueprint.add_url_rule("/outbox/messages", view_func=list_messages, methods=["GET"])
    return blueprint


@validate_querystring(MessagesQuery)
@validate_response(Messages)
async def list_messages(query_args: MessagesQuery) -> Messages:
    """The store's newest outbox messages (development only)."""
    limit = query_args.limit or current_kernel().settings_of("outbox", OutboxSettings).list_limit
    rows = await recent(limit, query_args.to)
    return Messages(messages=[StoredMessage(**_decoded(row)) for row in rows])


def _decoded(row: dict[str, Any]) -> dict[str, Any]:
    template = row["template"]
    return row | {"template": json.loads(template) if isinstance(template, str) else template}
