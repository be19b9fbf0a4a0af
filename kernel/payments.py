"""The payment-provider contract: what a third-party PSP plugin (M-Pesa, Airtel Money, a card PSP) implements.

The shapes follow Medusa's provider interface and Saleor's rules (anchors §1, §9): every mutating call carries an
idempotency key, every PSP notification is verified before it is acknowledged and carries a key to de-duplicate
it by, and optional operations are declared as capabilities instead of failing deep inside a checkout.

The first section (webhook requests, the receiver base class, provider errors) is shared with `kernel.messaging`.
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import re
from abc import ABC, abstractmethod
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import TYPE_CHECKING, Any, ClassVar, Generic, TypeVar

if TYPE_CHECKING:
    from pydantic import BaseModel

# -- shared by payment providers and messaging channels -------------------------------------------------------

_E164 = re.compile(r"^\+[1-9]\d{6,14}$")

EventT = TypeVar("EventT")
CodeT = TypeVar("CodeT", bound=StrEnum)


def is_e164(number: str) -> bool:
    """Whether `number` is written in E.164 (`+254712345678`); plugins normalise what their API sends to it."""
    return _E164.match(number) is not None


def require_text(owner: object, *names: str) -> None:
    """Reject empty identifiers: a blank key would make routing and de-duplication silently wrong."""
    for name in names:
        if not getattr(owner, name):
            raise ValueError(f"{type(owner).__name__}.{name} must not be empty")


def require_aware(moment: datetime | None, what: str) -> None:
    """Reject naive datetimes: PSPs report local time (Daraja uses EAT), so the zone must be explicit."""
    if moment is not None and moment.tzinfo is None:
        raise ValueError(f"{what} must carry a time zone")


class CaseInsensitiveHeaders(Mapping[str, str]):
    """Read-only headers looked up regardless of case, as HTTP header names are."""

    def __init__(self, headers: Mapping[str, str] | Iterable[tuple[str, str]] = ()) -> None:
        self._headers = {name.lower(): value for name, value in dict(headers).items()}

    def __getitem__(self, name: str) -> str:
        return self._headers[name.lower()]

    def __iter__(self) -> Iterator[str]:
        return iter(self._headers)

    def __len__(self) -> int:
        return len(self._headers)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self._headers!r})"


@dataclass(frozen=True)
class WebhookRequest:
    """A PSP's or platform's HTTP notification exactly as received: the raw body, because signatures cover bytes."""

    method: str
    body: bytes
    headers: Mapping[str, str] = field(default_factory=CaseInsensitiveHeaders)
    query: Mapping[str, str] = field(default_factory=dict)
    client_ip: str | None = None
    # Set by the kernel when the URL carried a valid per-tenant token (`/webhooks/payments/<provider>/<token>`):
    # the tenant the sender was given that URL for. None on the shared URL.
    tenant_id: str | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "headers", CaseInsensitiveHeaders(self.headers))

    def hmac_sha256_matches(self, secret: bytes, header: str, *, prefix: str = "sha256=") -> bool:
        """Whether `header` holds `prefix` + hex HMAC-SHA256(secret, raw body), e.g. WhatsApp's X-Hub-Signature-256.

        Computed over the raw bytes (re-serialised JSON differs), compared in constant time; a missing header fails.
        """
        received = self.headers.get(header, "")
        if not received.startswith(prefix):
            return False
        expected = hmac.new(secret, self.body, hashlib.sha256).hexdigest()
        return hmac.compare_digest(received.removeprefix(prefix).encode(), expected.encode())

    def comes_from(self, networks: Iterable[str]) -> bool:
        """Whether the client address is in one of `networks`: the check left for PSPs that sign nothing (Daraja)."""
        try:
            address = ipaddress.ip_address(self.client_ip or "")
        except ValueError:
            return False
        address = getattr(address, "ipv4_mapped", None) or address  # a dual-stack server sees ::ffff:196.201.214.200
        return any(address in ipaddress.ip_network(network) for network in networks)


class WebhookReceiver(ABC, Generic[EventT]):
    """What the kernel's webhook route needs from a provider or channel: `name` is the last segment of its URL."""

    name: str
    # The pydantic model of one shop's settings and secrets for this receiver, kept in the kernel's encrypted
    # credential store (`soko credentials set TENANT NAME`); `SecretStr` fields are masked everywhere. None: the
    # receiver needs no per-shop credentials.
    credentials_model: ClassVar[type[BaseModel] | None] = None

    @abstractmethod
    async def verify_webhook(self, request: WebhookRequest) -> bool:
        """Whether the request really comes from the PSP or platform; called before anything else, never raises.

        Check the signature where there is one; where the sender signs nothing, check the source address
        (`request.comes_from`), a secret in `request.query`, the body's shape, or ask the PSP. An empty body is
        never genuine.
        """

    @abstractmethod
    async def parse_webhook(self, request: WebhookRequest) -> list[EventT]:
        """The events in a verified request; `[]` for notifications you do not act on.

        Parsing the same request twice must give the same `dedupe_key`s: senders retry, and the hooks that receive
        the events recognise repeats by them. Raise `ValueError` (`json.JSONDecodeError` is one) for a body you
        cannot read.
        """

    def webhook_ack(self, events: Sequence[EventT]) -> tuple[dict[str, Any], int]:
        """The JSON body and 2xx status the sender expects once its events were handed over (Daraja wants its own)."""
        return {"status": "accepted"}, 200


class UnsupportedOperation(Exception):
    """An optional operation the receiver did not declare among its capabilities; callers check capabilities first."""

    def __init__(self, receiver: str, capability: StrEnum) -> None:
        super().__init__(f"{receiver} does not support {capability}")
        self.receiver = receiver
        self.capability = capability


class ProviderError(Exception, Generic[CodeT]):
    """The PSP or platform said no, or could not be reached.

    `code` is the kernel's vocabulary, so callers react without knowing the provider; the provider's own code
    stays in `provider_code` for support. `retryable` means the same call, with the same idempotency key, may
    succeed later (after `retry_after` seconds when the provider said).
    """

    def __init__(
        self,
        code: CodeT,
        detail: str = "",
        *,
        retryable: bool,
        provider_code: str | None = None,
        retry_after: float | None = None,
    ) -> None:
        super().__init__(f"{code}: {detail}" if detail else str(code))
        self.code = code
        self.detail = detail
        self.retryable = retryable
        self.provider_code = provider_code
        self.retry_after = retry_after


# -- payments -------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Money:
    """An amount in the currency's minor unit (KES 10.50 is 1050), never a float."""

    amount_minor: int
    currency: str

    def __post_init__(self) -> None:
        if isinstance(self.amount_minor, bool) or not isinstance(self.amount_minor, int) or self.amount_minor < 0:
            raise ValueError(f"Money.amount_minor must be a whole number >= 0, not {self.amount_minor!r}")
        if not re.fullmatch(r"[A-Z]{3}", self.currency):
            raise ValueError(f"Money.currency must be an upper-case ISO 4217 code, not {self.currency!r}")


@dataclass(frozen=True)
class PaidOrder:
    """An order whose payment just succeeded, as the `order_paid` hook tells it: once per order, in its tenant's
    transaction. `customer_phone` (E.164) is the order's, for a receipt; never log it as it is."""

    order_id: str
    total: Money
    customer_phone: str | None
    payment_id: str


class PaymentStatus(StrEnum):
    """Medusa's payment-session states plus `refunded`, which card PSPs report by webhook."""

    PENDING = "pending"
    REQUIRES_ACTION = "requires_action"
    AUTHORIZED = "authorized"
    CAPTURED = "captured"
    FAILED = "failed"
    CANCELED = "canceled"
    REFUNDED = "refunded"


class NextAction(StrEnum):
    """What the customer must do for a payment in `requires_action`."""

    APPROVE_ON_PHONE = "approve_on_phone"  # an STK push PIN prompt
    REDIRECT = "redirect"  # 3-D Secure or a hosted page; the URL is `data["redirect_url"]`


class PaymentCapability(StrEnum):
    """Optional operations a provider implements; undeclared ones raise `UnsupportedOperation`."""

    REFUND = "refund"
    PARTIAL_REFUND = "partial_refund"  # refund less than the captured amount; implies REFUND
    CAPTURE = "capture"
    CANCEL = "cancel"


class PaymentErrorCode(StrEnum):
    """Why a payment call failed, in words the kernel can act on whatever the PSP."""

    DECLINED = "declined"
    INSUFFICIENT_FUNDS = "insufficient_funds"
    CANCELED_BY_CUSTOMER = "canceled_by_customer"
    EXPIRED = "expired"  # the customer did not answer in time (Daraja 1037, 1019)
    NOT_FOUND = "not_found"  # the PSP does not know this reference
    INVALID_REQUEST = "invalid_request"
    MISCONFIGURED = "misconfigured"  # credentials or account settings: an operator must act
    RATE_LIMITED = "rate_limited"
    UNAVAILABLE = "unavailable"
    UNKNOWN = "unknown"


class PaymentError(ProviderError[PaymentErrorCode]):
    """A payment call failed. Only the provider knows whether repeating it could charge twice: it sets `retryable`."""


@dataclass(frozen=True)
class PaymentIntent:
    """A request to collect `amount` for our order `reference`; `idempotency_key` goes to the PSP where it takes one."""

    tenant_id: str
    reference: str
    amount: Money
    idempotency_key: str
    customer_phone: str | None = None
    description: str = ""
    metadata: Mapping[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        require_text(self, "tenant_id", "reference", "idempotency_key")
        if self.customer_phone is not None and not is_e164(self.customer_phone):
            raise ValueError("PaymentIntent.customer_phone must be E.164, like +254712345678")


@dataclass(frozen=True)
class PaymentResult:
    """Where a payment stands after a call. `data` is the provider's JSON-serialisable extra (stored, not read)."""

    status: PaymentStatus
    provider_ref: str
    next_action: NextAction | None = None
    data: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        require_text(self, "provider_ref")
        if (self.status is PaymentStatus.REQUIRES_ACTION) != (self.next_action is not None):
            raise ValueError("PaymentResult.next_action is set exactly when the status is requires_action")


@dataclass(frozen=True)
class PaymentEvent:
    """A verified PSP notification, as `payment_event` hooks receive it.

    `dedupe_key` is stable across redeliveries (the PSP's event id; for Daraja STK the CheckoutRequestID).
    `tenant_hint` is whatever in the notification names the merchant (a shortcode, an account id), or None: the
    kernel resolves tenants, usually through `provider_ref`. Check `amount` against the order before trusting it.
    """

    provider: str
    dedupe_key: str
    provider_ref: str
    status: PaymentStatus
    amount: Money | None = None
    tenant_hint: str | None = None
    receipt: str | None = None
    occurred_at: datetime | None = None
    payer_phone: str | None = None  # E.164, when the PSP says who paid (checked against the intent's phone)
    failure: PaymentErrorCode | None = None  # why, for status failed or canceled
    reference: str | None = None  # our order reference, when the payer typed it (M-Pesa C2B BillRefNumber)

    def __post_init__(self) -> None:
        require_text(self, "provider", "dedupe_key", "provider_ref")
        require_aware(self.occurred_at, "PaymentEvent.occurred_at")
        if self.payer_phone is not None and not is_e164(self.payer_phone):
            raise ValueError("PaymentEvent.payer_phone must be E.164, like +254712345678")


class PaymentProvider(WebhookReceiver[PaymentEvent]):
    """A PSP adapter. Set `name` (lower_snake_case, unique) and `capabilities`; pass `kernel.testing.contracts`.

    Resolve per-tenant credentials per call from `tenant_id`; never cache them per provider. Raise `PaymentError`
    for anything the PSP refuses or cannot do now.
    """

    capabilities: frozenset[PaymentCapability] = frozenset()
    # Seconds a pending payment waits for its webhook before reconciliation asks `get_status`.
    reconcile_after: float = 120.0

    @abstractmethod
    async def initiate(self, intent: PaymentIntent) -> PaymentResult:
        """Start collecting the payment (an STK push, a card session); the outcome usually arrives by webhook."""

    @abstractmethod
    async def get_status(self, provider_ref: str, *, tenant_id: str) -> PaymentResult:
        """Ask the PSP where a payment stands: the fallback when a webhook never arrives (Daraja STK Query)."""

    async def refund(self, provider_ref: str, amount: Money, *, tenant_id: str, idempotency_key: str) -> PaymentResult:
        """Return `amount` of a captured payment to the customer."""
        raise UnsupportedOperation(self.name, PaymentCapability.REFUND)

    async def capture(self, provider_ref: str, amount: Money, *, tenant_id: str, idempotency_key: str) -> PaymentResult:
        """Collect `amount` of an authorized payment."""
        raise UnsupportedOperation(self.name, PaymentCapability.CAPTURE)

    async def cancel(self, provider_ref: str, *, tenant_id: str, idempotency_key: str) -> PaymentResult:
        """Void a payment that is not captured yet."""
        raise UnsupportedOperation(self.name, PaymentCapability.CANCEL)
