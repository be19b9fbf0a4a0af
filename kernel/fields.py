"""Field types every plugin reuses, so one rule decides what a phone number, a slug or a clean string is.

Request models derive from `Model`: unknown fields are refused, strings are trimmed and stripped of control
characters. Phone numbers come out in E.164; numbers written without a country code are read in the region the
`default_region` setting names.
"""

from __future__ import annotations

import re
import unicodedata
from typing import Annotated, Any

import phonenumbers
from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field, field_validator

_default_region = "KE"
_SLUG_JUNK = re.compile(r"[^a-z0-9]+")
_MOBILE_TYPES = frozenset({phonenumbers.PhoneNumberType.MOBILE, phonenumbers.PhoneNumberType.FIXED_LINE_OR_MOBILE})


def set_default_region(region: str) -> None:
    """Called once by the kernel with the `default_region` setting."""
    global _default_region  # one process-wide setting, read on every phone number
    _default_region = region.upper()


def clean_text(value: Any) -> Any:
    """Trim, and drop control and format characters (NUL, escapes, bidi overrides) that have no place in data."""
    if not isinstance(value, str):
        return value
    return "".join(ch for ch in value if unicodedata.category(ch) not in {"Cc", "Cf"} or ch in "\t\n").strip()


def _e164(raw: str, *, mobile: bool) -> str:
    text = raw.strip()
    if text.startswith("00"):
        text = "+" + text[2:]  # the metadata only knows Kenya's 000 international prefix
    try:
        number = phonenumbers.parse(text, _default_region)
    except phonenumbers.NumberParseException:
        raise ValueError("not a phone number") from None
    if not phonenumbers.is_valid_number(number):
        raise ValueError("not a valid phone number")
    if mobile and phonenumbers.number_type(number) not in _MOBILE_TYPES:
        raise ValueError("not a mobile phone number")
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


def _phone(value: str) -> str:
    return _e164(value, mobile=False)


def _mobile(value: str) -> str:
    return _e164(value, mobile=True)


def _slug(value: str) -> str:
    slug = _SLUG_JUNK.sub("-", unicodedata.normalize("NFKD", value).encode("ascii", "ignore").decode().lower())
    slug = slug.strip("-")
    if not slug:
        raise ValueError("needs at least one letter or digit")
    return slug


_PHONE_FIELD = Field(min_length=3, max_length=32, json_schema_extra={"format": "phone", "examples": ["+254712345678"]})

CleanStr = Annotated[str, BeforeValidator(clean_text)]
PhoneNumber = Annotated[str, AfterValidator(_phone), _PHONE_FIELD]
MobileNumber = Annotated[str, AfterValidator(_mobile), _PHONE_FIELD]
Slug = Annotated[str, BeforeValidator(clean_text), AfterValidator(_slug), Field(min_length=1, max_length=63)]


class Model(BaseModel):
    """Base of every request model: unknown fields refused, every string field cleaned before validation."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    @field_validator("*", mode="before")
    @classmethod
    def _clean_strings(cls, value: Any) -> Any:
        return clean_text(value)
