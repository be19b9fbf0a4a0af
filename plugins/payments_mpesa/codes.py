"""What Daraja's result and error codes mean in the kernel's words (anchors §2.3, §2.4)."""

from __future__ import annotations

from dataclasses import dataclass

from kernel import PaymentErrorCode, PaymentStatus

# STK Query answers this (HTTP 500) while the customer has not answered yet: still pending, never a failure.
STILL_PROCESSING = "500.001.1001"


@dataclass(frozen=True)
class Outcome:
    """Where a finished STK push stands: its status, and why when it did not succeed."""

    status: PaymentStatus
    failure: PaymentErrorCode | None = None
    retryable: bool = False


RESULT_CODES: dict[str, Outcome] = {
    "0": Outcome(PaymentStatus.CAPTURED),
    "1": Outcome(PaymentStatus.FAILED, PaymentErrorCode.INSUFFICIENT_FUNDS),
    "1001": Outcome(PaymentStatus.FAILED, PaymentErrorCode.DECLINED, retryable=True),  # subscriber busy (locked)
    "1019": Outcome(PaymentStatus.FAILED, PaymentErrorCode.EXPIRED),  # the transaction expired
    "1025": Outcome(PaymentStatus.FAILED, PaymentErrorCode.UNAVAILABLE, retryable=True),  # the push was not sent
    "1032": Outcome(PaymentStatus.CANCELED, PaymentErrorCode.CANCELED_BY_CUSTOMER),
    "1037": Outcome(PaymentStatus.FAILED, PaymentErrorCode.EXPIRED),  # no answer from the phone in time
    "2001": Outcome(PaymentStatus.FAILED, PaymentErrorCode.DECLINED),  # wrong PIN
    "9999": Outcome(PaymentStatus.FAILED, PaymentErrorCode.UNAVAILABLE, retryable=True),  # push request error
}
UNKNOWN_RESULT = Outcome(PaymentStatus.FAILED, PaymentErrorCode.UNKNOWN)


def outcome_of(result_code: object) -> Outcome:
    """The outcome of an STK `ResultCode`, sent as a number in callbacks and as a string by STK Query."""
    return RESULT_CODES.get(str(result_code).strip(), UNKNOWN_RESULT)


def error_code_for_http(status: int) -> tuple[PaymentErrorCode, bool]:
    """The kernel's code, and whether a retry may help, for a Daraja error answer without a result code."""
    if status in (401, 403):
        return PaymentErrorCode.MISCONFIGURED, False
    if status == 404:
        return PaymentErrorCode.NOT_FOUND, False
    if status == 429:
        return PaymentErrorCode.RATE_LIMITED, True
    if status >= 500:
        return PaymentErrorCode.UNAVAILABLE, True
    return PaymentErrorCode.INVALID_REQUEST, False
