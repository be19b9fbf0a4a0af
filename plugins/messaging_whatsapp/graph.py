"""The Graph API's message shapes and its errors in the kernel's words (anchors §3.1, §3.5).

A message's *content* is the Graph message object without the recipient (`{"type": "text", "text": {...}}`): what
the messages table stores and the simulator checks. `payload` adds the recipient and our own message id, which Meta
echoes in every status webhook as `biz_opaque_callback_data`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import httpx

from kernel import SendError, SendErrorCode, Template

Content = dict[str, Any]

ERROR_CODES: Mapping[str, SendErrorCode] = {
    "4": SendErrorCode.RATE_LIMITED,  # app API-call limit
    "80007": SendErrorCode.RATE_LIMITED,  # WABA API-call limit
    "130429": SendErrorCode.RATE_LIMITED,  # the number's throughput
    "131056": SendErrorCode.RATE_LIMITED,  # (business, customer) pair pacing
    "131026": SendErrorCode.INVALID_RECIPIENT,  # undeliverable
    "131047": SendErrorCode.SESSION_WINDOW_CLOSED,  # more than 24 h since the customer wrote
    "131050": SendErrorCode.OPTED_OUT,  # the customer stopped these messages
    "132000": SendErrorCode.TEMPLATE_REJECTED,  # parameter count
    "132001": SendErrorCode.TEMPLATE_REJECTED,  # no such template in that language
    "132015": SendErrorCode.TEMPLATE_REJECTED,  # paused
    "190": SendErrorCode.MISCONFIGURED,  # expired or revoked token
    "1": SendErrorCode.UNAVAILABLE,
    "2": SendErrorCode.UNAVAILABLE,
    "131000": SendErrorCode.UNAVAILABLE,
}
PAIR_RATE_LIMIT = "131056"


def text_content(body: str, *, preview_url: bool = False) -> Content:
    return {"type": "text", "text": {"body": body, "preview_url": preview_url}}


def template_content(name: str, language: str, components: Sequence[Mapping[str, Any]] = ()) -> Content:
    template: dict[str, Any] = {"name": name, "language": {"code": language}}
    if components:
        template["components"] = [dict(component) for component in components]
    return {"type": "template", "template": template}


def kernel_template_content(template: Template, *, authentication: bool = False) -> Content:
    """The kernel's `Template` (positional text parameters) as Graph template content."""
    components = template_components(template.parameters, authentication=authentication)
    return template_content(template.name, template.language, components)


def template_components(values: Sequence[str], *, authentication: bool = False) -> list[dict[str, Any]]:
    """Positional body parameters; an authentication template repeats the code in its copy-code button."""
    parameters = [{"type": "text", "text": value} for value in values]
    components: list[dict[str, Any]] = [{"type": "body", "parameters": parameters}] if parameters else []
    if authentication and parameters:
        components.append({"type": "button", "sub_type": "url", "index": "0", "parameters": [parameters[0]]})
    return components


def buttons_content(body: str, buttons: Sequence[tuple[str, str]], *, footer: str | None = None) -> Content:
    """Up to three reply buttons, each `(id, title)`; the customer's tap comes back as an inbound message."""
    interactive: dict[str, Any] = {
        "type": "button",
        "body": {"text": body},
        "action": {"buttons": [{"type": "reply", "reply": {"id": id_, "title": title}} for id_, title in buttons]},
    }
    if footer:
        interactive["footer"] = {"text": footer}
    return {"type": "interactive", "interactive": interactive}


def list_content(body: str, button: str, sections: Sequence[Mapping[str, Any]]) -> Content:
    """A list: `sections` are `{"title", "rows": [{"id", "title", "description"?}]}`, at most ten."""
    interactive = {
        "type": "list",
        "body": {"text": body},
        "action": {"button": button, "sections": [dict(section) for section in sections]},
    }
    return {"type": "interactive", "interactive": interactive}


def payload(to: str, content: Content, reference: str) -> dict[str, Any]:
    """The request body of `POST /<phone_number_id>/messages`; Meta wants the number without its `+`."""
    return {
        "messaging_product": "whatsapp",
        "recipient_type": "individual",
        "to": to.removeprefix("+"),
        "biz_opaque_callback_data": reference,
        **content,
    }


def is_free_form(content: Content) -> bool:
    """Whether the 24-hour window applies: everything but a template is free-form."""
    return content.get("type") != "template"


def send_error(response: httpx.Response, *, pair_interval: float) -> SendError:
    """A Graph error answer as a `SendError`; a 5xx is retryable whatever its body says."""
    try:
        error = response.json().get("error") or {}
    except ValueError:
        error = {}
    code = str(error.get("code", response.status_code))
    details = (error.get("error_data") or {}).get("details") or error.get("message") or ""
    if response.status_code >= 500:
        return SendError(
            SendErrorCode.UNAVAILABLE, f"Graph answered {response.status_code}", retryable=True, provider_code=code
        )
    retry_after = pair_interval if code == PAIR_RATE_LIMIT else _retry_after(response)
    return SendError.classify(code, ERROR_CODES, str(details)[:200], retry_after=retry_after)


def transport_error(error: httpx.TransportError) -> SendError:
    """No answer (timeout, refused, reset): Meta may or may not have the message; retryable."""
    return SendError(SendErrorCode.UNAVAILABLE, type(error).__name__, retryable=True, provider_code="transport")


def _retry_after(response: httpx.Response) -> float | None:
    try:
        return float(response.headers["Retry-After"])
    except (KeyError, ValueError):
        return None
