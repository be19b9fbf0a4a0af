"""`hello.greet`: safe to run twice, as every soko task must be (delivery is at least once)."""

import logging

log = logging.getLogger("soko_hello")


async def greet(name: str) -> str:
    log.info("greeted %s", name, extra={"task": "hello.greet"})
    return name
