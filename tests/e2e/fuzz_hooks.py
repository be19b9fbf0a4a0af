"""Schemathesis hooks for the fuzz test: a cart in the store's currency, a line naming a product the fuzzed store
sells, a real mobile number at checkout and a fresh Idempotency-Key, on every step of a stateful walk and on
three other cases in four. So walks (cart -> item -> checkout -> order) reach the business logic instead of
stopping at `currency_mismatch`, `product_not_found`, a phone validation error or a key the generator reused;
the rest stay as generated, so refusals are still exercised."""

from __future__ import annotations

import os
import uuid
import zlib
from typing import Any

import schemathesis

SKUS = os.environ.get("SOKO_FUZZ_SKUS", "").split(",")
PHONE = "+254712345678"


def _most(case: Any) -> bool:
    """Every step of a stateful walk (its links carry the ids, so it is there to reach the business logic), and
    three other cases in four, chosen by the case id."""
    if case.meta is not None and case.meta.phase.name == "stateful":
        return True
    return zlib.crc32(str(case.id).encode()) % 4 != 0


@schemathesis.hook
def before_call(context: Any, case: Any, kwargs: Any) -> None:
    if not _most(case):
        return
    if case.headers and "Idempotency-Key" in case.headers:
        # Generated keys repeat ("0", "00"), and a key reused with another payload is rightly refused.
        case.headers["Idempotency-Key"] = str(uuid.uuid4())
    if not isinstance(case.body, dict):
        return
    path = case.operation.path
    if case.method.upper() == "POST" and path == "/carts":
        case.body.pop("currency", None)  # the store's own: products are priced in it
    elif case.method.upper() == "POST" and path == "/carts/{cart_id}/items":
        case.body["sku"] = SKUS[zlib.crc32(str(case.id).encode()) % len(SKUS)]
        case.body["quantity"] = 1
    elif case.method.upper() == "POST" and path == "/checkout":
        case.body["customer_phone"] = PHONE
