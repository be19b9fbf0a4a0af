"""`POST /messages/whatsapp` and `GET /messages/whatsapp/<id>` (staff of the shop only), and Meta's one URL.

The send route stores the message `queued` in the request's transaction and enqueues its job once that committed
(`after_this_request` runs after the view's transaction), answering 202 at once. The Idempotency-Key is the
idempotency plugin's (it covers `POST /messages/*`) and is also the message's own key, so even without that plugin
one key is one message. Free text to a customer outside the 24-hour window is refused here, before Meta is asked.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, Field, model_validator
from quart import Blueprint, Response, after_this_request, request
from quart.blueprints import BlueprintSetupState

from kernel import (
    MobileNumber,
    Model,
    Problem,
    current_kernel,
    validate_request,
    validate_response,
)
from plugins.auth.public import require_staff
from plugins.messaging_whatsapp import delivery, graph, outgoing, store
from plugins.messaging_whatsapp.runtime import CHANNEL, runtime_of

IDEMPOTENCY_HEADER = "Idempotency-Key"
MAX_TEXT = 4096
# Meta's one callback URL for every shop, and its largest payloads (~3 MB).
WEBHOOK_PATH = "/webhooks/whatsapp"
WEBHOOK_MAX_BYTES = 3 * 1024 * 1024


class TemplateIn(Model):
    name: str = Field(min_length=1, max_length=512, pattern=r"^[a-z0-9_]+$")
    language: str = Field(min_length=2, max_length=15)
    components: list[dict[str, Any]] = Field(default_factory=list, max_length=10)


class ReplyButton(Model):
    id: str = Field(min_length=1, max_length=256)
    title: str = Field(min_length=1, max_length=20)


class ListRow(Model):
    id: str = Field(min_length=1, max_length=200)
    title: str = Field(min_length=1, max_length=24)
    description: str | None = Field(default=None, max_length=72)


class ListSection(Model):
    title: str = Field(min_length=1, max_length=24)
    rows: list[ListRow] = Field(min_length=1, max_length=10)


class InteractiveIn(Model):
    """Reply buttons (`buttons`, 1 to 3) or a list (`button` label and `sections`, 1 to 10)."""

    body: str = Field(min_length=1, max_length=1024)
    buttons: list[ReplyButton] | None = Field(default=None, min_length=1, max_length=3)
    button: str | None = Field(default=None, min_length=1, max_length=20)
    sections: list[ListSection] | None = Field(default=None, min_length=1, max_length=10)

    @model_validator(mode="after")
    def _one_kind(self) -> InteractiveIn:
        if (self.buttons is None) == (self.sections is None) or (self.sections is None) != (self.button is None):
            raise ValueError("give either buttons, or button and sections")
        return self

    def content(self) -> graph.Content:
        if self.buttons is not None:
            return graph.buttons_content(self.body, [(button.id, button.title) for button in self.buttons])
        assert self.button is not None and self.sections is not None
        return graph.list_content(
            self.body, self.button, [section.model_dump(exclude_none=True) for section in self.sections]
        )


class SendIn(Model):
    to: MobileNumber
    text: str | None = Field(default=None, min_length=1, max_length=MAX_TEXT)
    template: TemplateIn | None = None
    interactive: InteractiveIn | None = None

    @model_validator(mode="after")
    def _exactly_one(self) -> SendIn:
        if sum(part is not None for part in (self.text, self.template, self.interactive)) != 1:
            raise ValueError("give exactly one of text, template and interactive")
        return self

    def content(self) -> graph.Content:
        if self.text is not None:
            return graph.text_content(self.text)
        if self.template is not None:
            return graph.template_content(self.template.name, self.template.language, self.template.components)
        assert self.interactive is not None
        return self.interactive.content()


class MessageOut(BaseModel):
    id: str
    status: Literal["queued", "sending", "accepted", "sent", "failed", "delivered", "read"]
    error_code: str | None = None
    provider_message_id: str | None = None


def messages_blueprint() -> Blueprint:
    blueprint = Blueprint("messaging_whatsapp", __name__)
    blueprint.add_url_rule("/messages/whatsapp", view_func=send_message, methods=["POST"])
    blueprint.add_url_rule("/messages/whatsapp/<uuid:message_id>", view_func=show_message, methods=["GET"])
    blueprint.record(_webhook_alias)
    return blueprint


def _webhook_alias(state: BlueprintSetupState) -> None:
    """`GET|POST /webhooks/whatsapp`: the kernel's messaging webhook views (inbox and all) for the whatsapp channel.

    Meta's app has one callback URL; this is it, for every shop (routed by `phone_number_id`, not by URL).
    """
    views = state.app.view_functions
    for method, endpoint in (("GET", "webhooks.messaging_handshake"), ("POST", "webhooks.messaging_webhook")):
        state.app.add_url_rule(
            WEBHOOK_PATH,
            f"messaging_whatsapp.{endpoint.rpartition('.')[2]}",
            view_func=views[endpoint],
            methods=[method],
            defaults={"channel": CHANNEL},
        )


@require_staff()
@validate_request(SendIn)
@validate_response(MessageOut, 202)
async def send_message(data: SendIn) -> tuple[MessageOut, int]:
    """Queue a WhatsApp message to a customer; the answer is the stored message, its send follows."""
    key = request.headers.get(IDEMPOTENCY_HEADER)
    if not key:
        raise Problem(400, "idempotency_key_missing", "Send an Idempotency-Key header with every message.")
    runtime = runtime_of(current_kernel())
    content = data.content()
    if graph.is_free_form(content) and not await delivery.within_window(runtime, data.to):
        raise Problem(
            422,
            "outside_service_window",
            "The customer has not written in the last 24 hours: only a template may be sent now.",
        )
    message = await store.insert(runtime.kernel, key, data.to, content)
    if message.status == "queued" and message.attempts == 0:

        @after_this_request
        async def hand_over(response: Response) -> Response:
            if response.status_code < 300:
                await outgoing.enqueue(runtime, message.id)
            return response

    return _out(message), 202


@require_staff()
@validate_response(MessageOut)
async def show_message(message_id: Any) -> MessageOut:
    """Where one message stands: queued, accepted by Meta, sent, delivered, read, or failed and why."""
    message = await store.get(current_kernel(), str(message_id))
    if message is None:
        raise Problem.for_status(404, "no such message")
    return _out(message)


def _out(message: store.MessageRow) -> MessageOut:
    return MessageOut.model_validate(
        {
            "id": message.id,
            "status": message.status,
            "error_code": message.error_code,
            "provider_message_id": message.provider_message_id,
        }
    )
