"""soko's public API for plugin authors. Everything not exported here is private to the kernel."""

import pluggy
from quart import current_app

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
    "DeliveryStatus",
    "InboundMessage",
    "Kernel",
    "MessageStatus",
    "MessagingChannel",
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
    "Problem",
    "RequestMiddleware",
    "SendError",
    "SendErrorCode",
    "SendResult",
    "Stage",
    "Template",
    "UnsupportedOperation",
    "WebhookRequest",
    "current_kernel",
    "hookimpl",
]
