"""Bare Quart with soko's trivial route: the baseline the kernel's overhead is measured against."""

from quart import Quart

app = Quart(__name__)


@app.get("/healthz")
async def healthz() -> dict[str, str]:
    """Same path and body as kernel/health.py, so only the framework around it differs."""
    return {"status": "ok"}
