"""The demo store's owner for `soko dev`: signed in with a password made fresh on every start and printed once.

A fixed demo password would be one more well-known credential; a fresh one costs the newcomer nothing, since
`soko dev` prints it beside the address it serves.
"""

from __future__ import annotations

import secrets

from kernel import Kernel
from plugins.auth import staff
from plugins.auth.principal import Role
from plugins.tenancy.public import tenant_scope

DEMO_STORE = "demo"
DEMO_EMAIL = "owner@demo.localhost"


async def seed(kernel: Kernel) -> str:
    password = secrets.token_urlsafe(12)
    async with tenant_scope(kernel, DEMO_STORE):
        await staff.reset(DEMO_EMAIL, password, Role.OWNER)
    return f"staff sign-in (POST /auth/login, Host: {DEMO_STORE}.localhost): {DEMO_EMAIL} / {password}"
