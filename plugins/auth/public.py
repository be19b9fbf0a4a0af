"""What other plugins may use of auth (declare `requires = ["auth"]`).

- `require_staff(role=Role.STAFF)`: a decorator for views only staff of the request's tenant may call: 401
  `unauthorized` when nobody is signed in, 403 `forbidden` for a customer or a role below `role`. Routes under
  `plugins.auth.admin_routes` (`/admin/*`) get the staff check without it; use it for finer roles.
- `current_principal()`: the signed-in `Principal` (user id, tenant id, role) of this request, or None.
- `Principal`, `Role`.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from functools import wraps
from typing import ParamSpec, TypeVar

from kernel import openapi_extra
from plugins.auth.middleware import forbidden, unauthorized
from plugins.auth.openapi import STAFF_ONLY
from plugins.auth.principal import Principal, Role, current_principal

P = ParamSpec("P")
R = TypeVar("R")
_RANK = {Role.CUSTOMER: 0, Role.STAFF: 1, Role.OWNER: 2}


def require_staff(role: Role = Role.STAFF) -> Callable[[Callable[P, Awaitable[R]]], Callable[P, Awaitable[R]]]:
    """Only staff of this tenant with at least `role` (owner outranks staff) may call the decorated view."""
    if not role.is_staff:
        raise ValueError("require_staff takes Role.STAFF or Role.OWNER")

    def decorate(view: Callable[P, Awaitable[R]]) -> Callable[P, Awaitable[R]]:
        @openapi_extra(responses=STAFF_ONLY)
        @wraps(view)
        async def guarded(*args: P.args, **kwargs: P.kwargs) -> R:
            principal = current_principal()
            if principal is None:
                raise unauthorized()
            if _RANK[principal.role] < _RANK[role]:
                raise forbidden()
            return await view(*args, **kwargs)

        return guarded

    return decorate


__all__ = ["Principal", "Role", "current_principal", "require_staff"]
