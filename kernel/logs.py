"""JSON-lines logging with personal data masked in every record, whoever logs it.

Call `configure_logging()` once at process start (web and worker alike), before the Quart app is
created: Quart only adds its own text handler when no handler is configured yet. Importing this
module configures nothing.

Masking rules (`mask`), applied to the message, every extra field and the traceback:

* Phone numbers: an optional ``+`` then 9 to 15 ASCII digits, where single spaces, hyphens or
  parentheses may separate digits, not glued to a word, a ``.``, ``+`` or ``-`` before it, nor to
  a word, ``:``, ``-`` or a decimal part after it (which spares UUIDs, hex ids, times, decimals and
  ``2026-11-28 20:58`` dates). Exactly six digits become ``*`` in place, keeping the last two
  and any leading ones: ``+254712345678`` -> ``+2547******78``, ``0712 345 678`` -> ``07** *** *78``.
  Known false positives: any other 9-15 digit number (epoch seconds, amounts in cents, long ids)
  and short numbers separated by single spaces (``order 12345 67890``). Known misses: a number
  glued to a word or hyphen (``ref-0712345678``) and separators of two or more characters.
* E-mail addresses: the local part becomes its first character and ``***``:
  ``jane.doe+x@example.co.ke`` -> ``j***@example.co.ke``. The domain needs a dot, so decorators
  and ``a@b`` in code survive.
* M-Pesa receipt numbers: a 10-character word of uppercase letters and digits that starts with a
  letter and holds a digit keeps its first three: ``NLJ7RT61SV`` -> ``NLJ*******``. Any such code
  (SKUs, base32 ids) is masked too; all-letter words such as ``POST`` survive.
"""

import asyncio
import atexit
import functools
import json
import logging
import re
import sys
import time
from typing import TextIO

from kernel.context import request_id_var, tenant_id_var, user_id_var

# Each pattern opens with a character class so the regex engine skips to candidates in C.
_PHONE = re.compile(
    r"""
    [+0-9](?<![\w.+-][+0-9])                  # a + or digit not glued to a word, number or id
    (?:(?<=\+)[0-9]|(?<=[0-9]))                # a + needs a digit next
    (?:(?:[ -]|\)[ -]?|[ -]?\()?[0-9]){8,14}   # 9-15 digits, single space, hyphen, ( or ) between
    (?![\w:-]|\.[0-9])                        # not glued to a word, id, time or decimal after
    """,
    re.VERBOSE,
)
# Nine digits and separators in a row, as every phone number above holds: a cheap pre-check.
_PHONE_HINT = re.compile(r"[0-9][0-9 ()-]{8}")
_EMAIL = re.compile(r"(?<![\w.%+-])([\w%+-])[\w.%+-]*@(?=[\w-]+(?:\.[\w-]+)+)")
_RECEIPT = re.compile(r"([A-Z](?<!\w[A-Z])(?=[A-Z]*[0-9])[A-Z0-9]{2})[A-Z0-9]{7}\b")
_ENCODE = json.JSONEncoder(default=str).encode
_TRACEBACKS = logging.Formatter()

# Attributes every LogRecord has; anything else on a record came from the caller's ``extra=``.
_RECORD_ATTRS = frozenset(logging.makeLogRecord({}).__dict__) | {"message", "asctime"}
_CONTEXT = (("request_id", request_id_var), ("tenant_id", tenant_id_var), ("user_id", user_id_var))
# Libraries that log a line per request at INFO (or floods at DEBUG) duplicating our own logs.
_NOISY = ("hypercorn.access", "httpx", "httpcore", "pgserver")


def _mask_phone(match: re.Match[str]) -> str:
    """Star six digits in place so separators, country code and the last two digits stay readable."""
    text = match.group()
    digits = sum(char.isdecimal() for char in text)
    seen = 0
    out = []
    for char in text:
        if char.isdecimal():
            seen += 1
            if digits - 8 < seen <= digits - 2:
                char = "*"
        out.append(char)
    return "".join(out)


def _mask_email(match: re.Match[str]) -> str:
    """Keep the first character of the local part; its length would say too much."""
    return f"{match[1]}***@"


def _mask_receipt(match: re.Match[str]) -> str:
    """Keep the first three characters, enough to tell receipts apart when reading logs."""
    return f"{match[1]}*******"


def mask(text: str) -> str:
    """Mask phone numbers, e-mail addresses and M-Pesa receipt numbers in `text` (rules above)."""
    if "@" in text:
        text = _EMAIL.sub(_mask_email, text)
    if _PHONE_HINT.search(text):
        text = _PHONE.sub(_mask_phone, text)
    if text.lower() != text:  # receipts hold capitals; cheaper than a regex scan
        text = _RECEIPT.sub(_mask_receipt, text)
    return text


def _mask_value(value: object) -> object:
    """Mask strings at any depth; stringify odd objects here, or json's default=str would leak them."""
    if isinstance(value, str):
        return mask(value)
    if value is None or isinstance(value, bool | float) or (isinstance(value, int) and value < 10**8):
        return value  # too short to be a phone number
    if isinstance(value, dict):
        return {mask(str(key)): _mask_value(item) for key, item in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [_mask_value(item) for item in value]
    text = str(value)
    masked = mask(text)
    return value if isinstance(value, int) and masked == text else masked


class MaskingFilter(logging.Filter):
    """Masks a record's message, extra fields and traceback in place, before any formatting."""

    def filter(self, record: logging.LogRecord) -> bool:
        """Mask the record; never drop it."""
        try:
            message = record.getMessage()
        except Exception:  # a bad %-format must neither raise into the caller nor leak unmasked args
            message = f"{record.msg} % {record.args!r}"
        record.msg, record.args = mask(message), None
        for key, value in record.__dict__.items():
            if key not in _RECORD_ATTRS:
                record.__dict__[key] = _mask_value(value)
        if record.exc_info and not record.exc_text:
            record.exc_text = _TRACEBACKS.formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = mask(record.exc_text)
        if record.stack_info:
            record.stack_info = mask(record.stack_info)
        return True


@functools.lru_cache(maxsize=4)
def _utc_second(second: int) -> str:
    """Format each second once, not once per record: strftime is near a tenth of a line's cost."""
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(second))


class _JsonFormatter(logging.Formatter):
    """One JSON object per record; extra fields never overwrite the ones set here."""

    def format(self, record: logging.LogRecord) -> str:
        """Serialise `record`, with the request context of the task that logs it."""
        entry: dict[str, object] = {
            "ts": f"{_utc_second(int(record.created))}.{int(record.msecs):03d}Z",
            "level": record.levelname,
            "logger": record.name,
            "msg": record.getMessage(),
        }
        for key, var in _CONTEXT:
            if (value := var.get()) is not None:
                entry[key] = value
        for key, value in record.__dict__.items():
            if key not in _RECORD_ATTRS:
                entry.setdefault(key, value)
        if record.exc_text:  # MaskingFilter formatted and masked it
            entry["exc"] = record.exc_text
        if record.stack_info:
            entry["stack"] = record.stack_info
        return _ENCODE(entry)


class _JsonHandler(logging.StreamHandler):
    """Marks the handler configure_logging installed, so a second call replaces it."""


_ACCESS = logging.getLogger("soko.access")
_installed: list[_JsonHandler] = []  # the handler configure_logging installed, if any
# Access lines wait at most this long, or until this many are waiting, and then go out in one write: a write per
# request was the largest single cost soko added to a request (as nginx's `access_log ... buffer= flush=`).
ACCESS_FLUSH_SECONDS = 0.1
ACCESS_BATCH_LINES = 64
_pending: list[str] = []


def log_access(method: str, route: str | None, status: int, latency_ms: float, *, mask_request_id: bool) -> None:
    """The access line of one request: batched straight to the JSON handler's stream, because it runs per request.

    Every field is either soko's own (route template, status, latency, generated ids) or a validated HTTP method;
    only a client-chosen request id can hold personal data, so only it is masked (`mask_request_id`). Without
    configure_logging (embedding, tests) it goes through the logging module like any record.
    """
    if not _ACCESS.isEnabledFor(logging.INFO):
        return
    message = f"{method} {route or '-'} {status}"
    fields = {"method": method, "route": route, "status": status, "latency_ms": latency_ms}
    if not _writing_directly():
        _ACCESS.info(message, extra=fields)
        return
    now = time.time()
    entry: dict[str, object] = {
        "ts": f"{_utc_second(int(now))}.{int(now * 1000) % 1000:03d}Z",
        "level": "INFO",
        "logger": "soko.access",
        "msg": message,
    }
    for key, var in _CONTEXT:
        if (value := var.get()) is not None:
            entry[key] = value
    if mask_request_id:
        entry["request_id"] = mask(str(entry["request_id"]))
    entry.update(fields)
    _pending.append(_ENCODE(entry) + "\n")
    if len(_pending) >= ACCESS_BATCH_LINES:
        flush_access_log()
    elif len(_pending) == 1:
        try:
            asyncio.get_running_loop().call_later(ACCESS_FLUSH_SECONDS, flush_access_log)
        except RuntimeError:  # no event loop (a synchronous caller): nothing would flush later
            flush_access_log()


def _writing_directly() -> bool:
    """Whether the handler configure_logging installed is still the root's (someone may have replaced it)."""
    return bool(_installed) and _installed[0] in logging.root.handlers


def flush_access_log() -> None:
    """Write the waiting access lines in one call; also run at exit, so a clean shutdown loses none."""
    if _pending and _writing_directly():
        stream = _installed[0].stream
        stream.write("".join(_pending))
        stream.flush()
    _pending.clear()


atexit.register(flush_access_log)


def configure_logging(level: str = "INFO", stream: TextIO | None = None) -> None:
    """Send every logger's records, masked, as JSON lines to `stream` (default: sys.stderr).

    stderr because stdout belongs to command output (``soko ... | jq``), and because Python keeps
    stderr line-buffered even when piped, so a crash loses no log lines.
    """
    root = logging.getLogger()
    root.setLevel(level.upper())  # first: a bad level fails before anything changed
    for name in _NOISY:
        logging.getLogger(name).setLevel(max(logging.WARNING, root.level))
    for old in [h for h in root.handlers if isinstance(h, _JsonHandler)]:
        root.removeHandler(old)
        old.close()
    handler = _JsonHandler(sys.stderr if stream is None else stream)
    handler.setFormatter(_JsonFormatter())
    handler.addFilter(MaskingFilter())
    root.addHandler(handler)
    _installed[:] = [handler]
