"""soko's public API for plugin authors. Everything not exported here is private to the kernel."""

import pluggy
from quart import current_app
from quart_schema import validate_querystring, validate_request, validate_response

from kernel.fields import CleanStr, MobileNumber, Model, PhoneNumber, Slug
from kernel.kernel import Kernel
from kernel.messaging import (
    ChannelCapability,
    DeliveryStatus,
    InboundMessage,
    MessageStatus,
    MessagingChannel,
    OutboundMessage,
    SendError,
    SendErrorCode,
    SendResult,
    Template,
)
from kernel.payments import (
    Money,
    NextAction,
    PaymentCapability,
    PaymentError,
    PaymentErrorCode,
    PaymentEvent,
    PaymentIntent,
    PaymentProvider,
    PaymentResult,
    PaymentStatus,
    UnsupportedOperation,
    WebhookRequest,
)
from kernel.pipeline import CallNext, RequestMiddleware, Stage
from kernel.problems import Problem

hookimpl = pluggy.HookimplMarker("soko")


def current_kernel() -> Kernel:
    """The kernel of the app serving the current request."""
    kernel: Kernel = current_app.extensions["soko"]
    return kernel


__all__ = [
    "CallNext",
    "ChannelCapability",
    "CleanStr",
    "DeliveryStatus",
    "InboundMessage",
    "Kernel",
    "MessageStatus",
    "MessagingChannel",
    "MobileNumber",
    "Model",
    "Money",
    "NextAction",
    "OutboundMessage",
    "PaymentCapability",
    "PaymentError",
    "PaymentErrorCode",
    "PaymentEvent",
    "PaymentIntent",
    "PaymentProvider",
    "PaymentResult",
    "PaymentStatus",
    "PhoneNumber",
    "Problem",
    "RequestMiddleware",
    "SendError",
    "SendErrorCode",
    "SendResult",
    "Slug",
    "Stage",
    "Template",
    "UnsupportedOperation",
    "WebhookRequest",
    "current_kernel",
    "hookimpl",
    "validate_querystring",
    "validate_request",
    "validate_response",
]
