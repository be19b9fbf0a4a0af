"""soko's public API for plugin authors. Everything not exported here is private to the kernel."""

import pluggy
from quart import current_app
from quart_schema import validate_querystring, validate_request, validate_response

from kernel.bodies import json_body
from kernel.commit import after_commit, before_commit
from kernel.context import request_id_var, tenant_id_var, user_id_var
from kernel.db import NoTenant
from kernel.fields import CleanStr, MobileNumber, Model, PhoneNumber, Slug
from kernel.inbox import Quarantine
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
from kernel.metrics import count_otp_send, count_payment_intent, count_ratelimit_refusal
from kernel.openapi import openapi_extra, operation_id, problem_responses
from kernel.payments import (
    Money,
    NextAction,
    PaidOrder,
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
from kernel.periodic import periodic_per_tenant
from kernel.pipeline import CallNext, RequestMiddleware, Stage
from kernel.problems import Problem
from kernel.redis_client import RedisClient
from kernel.routes import RoutePatterns, check_route_pattern, rule_as_path
from kernel.settings import SettingsError
from kernel.tracing import traced_transport

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
    "NoTenant",
    "OutboundMessage",
    "PaidOrder",
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
    "Quarantine",
    "RedisClient",
    "RequestMiddleware",
    "RoutePatterns",
    "SendError",
    "SendErrorCode",
    "SendResult",
    "SettingsError",
    "Slug",
    "Stage",
    "Template",
    "UnsupportedOperation",
    "WebhookRequest",
    "after_commit",
    "before_commit",
    "check_route_pattern",
    "count_otp_send",
    "count_payment_intent",
    "count_ratelimit_refusal",
    "current_kernel",
    "hookimpl",
    "json_body",
    "openapi_extra",
    "operation_id",
    "periodic_per_tenant",
    "problem_responses",
    "request_id_var",
    "rule_as_path",
    "tenant_id_var",
    "traced_transport",
    "user_id_var",
    "validate_querystring",
    "validate_request",
    "validate_response",
]
