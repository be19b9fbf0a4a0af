"""Telling operators that Redis is failing the rate limits, without a log line per request.

The first failure is logged at once, then at most one warning per `log_every_seconds`, each saying how many
failures it stands for; the first success after a failure says the limits are enforced again.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

log = logging.getLogger("soko.ratelimit")


class OutageLog:
    def __init__(self, every_seconds: float, clock: Callable[[], float] = time.monotonic) -> None:
        self._every = every_seconds
        self._clock = clock
        self._failures = 0  # since the last warning
        self._last_warning: float | None = None
        self._failing = False

    def failed(self, reason: str, failure_modes: str) -> None:
        self._failures += 1
        self._failing = True
        now = self._clock()
        if self._last_warning is not None and now - self._last_warning < self._every:
            return
        log.warning(
            "rate limits unavailable: Redis %s; %d request(s) since the last warning; policies fail %s",
            reason,
            self._failures,
            failure_modes,
            extra={"failures": self._failures},
        )
        self._last_warning = now
        self._failures = 0

    def succeeded(self) -> None:
        if self._failing:
            log.warning(
                "rate limits enforced again: Redis answers (%d unreported failure(s) before)",
                self._failures,
                extra={"failures": self._failures},
            )
            self._failing = False
            self._last_warning = None
            self._failures = 0
