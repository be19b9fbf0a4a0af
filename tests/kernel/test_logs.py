"""configure_logging writes masked JSON lines for every logger; mask() keeps ordinary numbers."""

import asyncio
import io
import json
import logging
import re
from collections.abc import Callable, Iterator

import pytest

from kernel.context import request_id_var, tenant_id_var, user_id_var
from kernel.logs import (
    ACCESS_BATCH_LINES,
    ACCESS_FLUSH_SECONDS,
    configure_logging,
    flush_access_log,
    log_access,
    mask,
)

# (as written, as it must appear in the log)
SECRETS = [
    ("+254712345678", "+2547******78"),
    ("254712345678", "2547******78"),
    ("0712345678", "07******78"),
    ("0712 345 678", "07** *** *78"),
    ("0712-345-678", "07**-***-*78"),
    ("+254 712 345 678", "+254 7** *** *78"),
    ("(0712) 345678", "(07**) ****78"),
    ("712345678", "7******78"),
    ("+14155552671", "+141******71"),
    ("+255712345678", "+2557******78"),
    ("jane.doe+x@example.co.ke", "j***@example.co.ke"),
    ("NLJ7RT61SV", "NLJ*******"),
    ("QGR2XYZ9AB", "QGR*******"),
]
ORDINARY = [
    "1500",
    "5432",
    "status 200",
    "latency 12.5",
    "2026-11-28T20:58:50",
    "2026-11-28 20:58:50.123Z",
    "550e8400-e29b-41d4-a716-446655440000",
    "12345678-1234-1234-1234-123456789012",
    "4f1c2a9b8e7d6c5b4a3f2e1d0c9b8a7f",
    "0123456789abcdef0123456789abcdef",
    "192.168.100.200",
    "KES 1,500,000",
    "POST",
    "INTERNAL_ERROR",
    "@app.route('/x')",
]


@pytest.fixture
def output() -> Iterator[Callable[[], list[dict[str, object]]]]:
    """Configure logging into a buffer and return a reader of its parsed lines; restore root after."""
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    buffer = io.StringIO()
    configure_logging("DEBUG", stream=buffer)
    yield lambda: [json.loads(line) for line in buffer.getvalue().splitlines()]
    root.handlers[:] = handlers
    root.setLevel(level)


def log_in(place: str, secret: str) -> None:
    """Log `secret` in one place a record can carry it."""
    logger = logging.getLogger("soko.test")
    if place == "message":
        logger.info(f"paying {secret} now")
    elif place == "args":
        logger.info("paying %s now", secret)
    elif place == "extra":
        logger.info("paying", extra={"customer": f"to {secret}"})
    elif place == "nested":
        logger.info("paying", extra={"payload": {"to": [{"msisdn": secret}], "pair": ("x", secret)}})
    else:
        try:
            raise ValueError(f"rejected {secret}")
        except ValueError:
            logger.exception("paying failed")


@pytest.mark.parametrize(("secret", "masked"), SECRETS)
@pytest.mark.parametrize("place", ["message", "args", "extra", "nested", "exception"])
def test_masks_every_place(output: Callable[[], list[dict[str, object]]], place: str, secret: str, masked: str):
    log_in(place, secret)
    [line] = output()
    text = json.dumps(line)
    assert secret not in text
    assert masked in text
    if place == "exception":
        assert f"ValueError: rejected {masked}" in str(line["exc"])


@pytest.mark.parametrize("text", ORDINARY)
def test_keeps_ordinary_numbers_and_words(output: Callable[[], list[dict[str, object]]], text: str):
    assert mask(text) == text
    logging.getLogger("soko.test").info("seen %s", text, extra={"field": text})
    [line] = output()
    assert line["msg"] == f"seen {text}"
    assert line["field"] == text


class Marker:
    """An object json cannot serialise, whose str() holds a phone number."""

    def __str__(self) -> str:
        return "call +254712345678"


def test_line_fields_context_and_extra_types(output: Callable[[], list[dict[str, object]]]):
    tokens = [var.set(value) for var, value in ((request_id_var, "r1"), (tenant_id_var, "t1"), (user_id_var, "u1"))]
    try:
        logging.getLogger("soko.test").warning(
            "hi", extra={"status": 200, "ms": 12.5, "msisdn": 254712345678, "contact": Marker()}
        )
    finally:
        for var, token in zip((request_id_var, tenant_id_var, user_id_var), tokens, strict=True):
            var.reset(token)
    logging.getLogger("soko.test").info("later")
    first, second = output()
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", str(first["ts"]))
    assert first | {"ts": None} == {
        "ts": None,
        "level": "WARNING",
        "logger": "soko.test",
        "msg": "hi",
        "request_id": "r1",
        "tenant_id": "t1",
        "user_id": "u1",
        "status": 200,
        "ms": 12.5,
        "msisdn": "2547******78",
        "contact": "call +2547******78",
    }
    assert "request_id" not in second


def test_configuring_twice_does_not_duplicate_lines(output: Callable[[], list[dict[str, object]]]):
    buffer = io.StringIO()
    configure_logging(stream=buffer)
    configure_logging(stream=buffer)
    logging.getLogger("soko.test").info("once")
    assert buffer.getvalue().count("once") == 1
    assert output() == []  # the first configuration's handler is gone too


def test_third_party_logger_is_masked(output: Callable[[], list[dict[str, object]]]):
    logging.getLogger("piccolo.x").info("query for %s", "0712345678")
    [line] = output()
    assert (line["logger"], line["msg"]) == ("piccolo.x", "query for 07******78")


def test_quiets_hypercorn_access_log(output: Callable[[], list[dict[str, object]]]):
    logging.getLogger("hypercorn.access").info("GET / 200")
    logging.getLogger("hypercorn.error").info("Running on http://0.0.0.0:8000")
    assert [line["logger"] for line in output()] == ["hypercorn.error"]


def test_bad_format_neither_raises_nor_leaks(output: Callable[[], list[dict[str, object]]]):
    logging.getLogger("soko.test").info("paying %d", "0712345678")
    [line] = output()
    assert line["msg"] == "paying %d % ('07******78',)"


def test_stack_info_is_kept(output: Callable[[], list[dict[str, object]]]):
    logging.getLogger("soko.test").info("where", stack_info=True)
    [line] = output()
    assert "test_stack_info_is_kept" in str(line["stack"])


def test_rejects_unknown_level_before_changing_anything(output: Callable[[], list[dict[str, object]]]):
    with pytest.raises(ValueError, match="LOUD"):
        configure_logging("loud")
    logging.getLogger("soko.test").debug("still configured")
    assert [line["msg"] for line in output()] == ["still configured"]


def _access(output: Callable[[], list[dict[str, object]]]) -> list[dict[str, object]]:
    return [line for line in output() if line["logger"] == "soko.access"]


async def test_access_lines_are_batched_then_written_within_the_flush_interval(
    output: Callable[[], list[dict[str, object]]],
) -> None:
    flush_access_log()  # what an earlier test left waiting in the batch is written now, before this test's line
    earlier = len(_access(output))

    def written() -> list[dict[str, object]]:
        return _access(output)[earlier:]

    token = request_id_var.set("0712345678")
    try:
        log_access("GET", "/orders/<order_id>", 200, 1.5, mask_request_id=True)
    finally:
        request_id_var.reset(token)
    assert written() == [], "one line waits for its batch"
    deadline = asyncio.get_running_loop().time() + 5 * ACCESS_FLUSH_SECONDS
    while not written():
        assert asyncio.get_running_loop().time() < deadline, "the batch was never written"
        await asyncio.sleep(ACCESS_FLUSH_SECONDS / 10)  # polls the condition; the deadline bounds it
    (line,) = written()
    assert line["msg"] == "GET /orders/<order_id> 200"
    assert line["request_id"] == "07******78"
    assert (line["route"], line["status"], line["latency_ms"]) == ("/orders/<order_id>", 200, 1.5)


async def test_a_full_batch_is_written_at_once_and_the_rest_on_flush(
    output: Callable[[], list[dict[str, object]]],
) -> None:
    flush_access_log()
    before = len(_access(output))
    for _ in range(ACCESS_BATCH_LINES + 1):
        log_access("GET", "/healthz", 200, 0.1, mask_request_id=False)
    assert len(_access(output)) - before == ACCESS_BATCH_LINES
    flush_access_log()  # what the exit handler does
    assert len(_access(output)) - before == ACCESS_BATCH_LINES + 1
