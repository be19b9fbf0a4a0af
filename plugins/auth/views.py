"""Auth's routes: customer codes and tokens under /auth, staff login and logout, and the staff list for owners.

Failures that must be remembered (a wrong code's attempt, a reused refresh token's revoked family) are returned
as problem responses rather than raised: a raised error would roll the view's transaction back.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field
from quart import Blueprint, Response, after_this_request

from kernel import (
    CleanStr,
    MobileNumber,
    Model,
    current_kernel,
    openapi_extra,
    problem_responses,
    tenant_id_var,
    validate_request,
    validate_response,
)
from plugins.auth import cookies, otp, refresh, sessions, staff
from plugins.auth.middleware import unauthorized
from plugins.auth.principal import Principal, Role, current_principal
from plugins.auth.public import require_staff
from plugins.auth.runtime import Auth, auth_of

PREFIX = "/auth"
ADMIN_PREFIX = "/admin/auth"


class CodeRequest(Model):
    phone: MobileNumber


class CodeVerify(Model):
    phone: MobileNumber
    code: str = Field(pattern=r"^[0-9]{6}$")


class RefreshRequest(Model):
    refresh_token: str = Field(min_length=16, max_length=128)


class LogoutRequest(Model):
    refresh_token: str | None = Field(default=None, min_length=16, max_length=128)


class LoginRequest(Model):
    email: CleanStr = Field(min_length=3, max_length=254, pattern=r"^[^@\s]+@[^@\s]+$")
    password: str = Field(min_length=1, max_length=1024)


class CodeSent(BaseModel):
    """The same for every number: whether it belongs to a customer is not told."""

    status: Literal["sent"] = "sent"
    expires_in: int


class TokenPair(BaseModel):
    access_token: str
    token_type: Literal["Bearer"] = "Bearer"  # noqa: S105 - the OAuth 2 token type, not a secret
    expires_in: int
    refresh_token: str


class Me(BaseModel):
    user_id: str
    tenant_id: str
    role: Role


class StaffMember(BaseModel):
    id: str
    email: str
    role: Role


class StaffList(BaseModel):
    staff: list[StaffMember]


def auth_blueprint() -> Blueprint:
    blueprint = Blueprint("auth", __name__)
    blueprint.add_url_rule(f"{PREFIX}/otp/request", view_func=request_code, methods=["POST"])
    blueprint.add_url_rule(f"{PREFIX}/otp/verify", view_func=verify_code, methods=["POST"])
    blueprint.add_url_rule(f"{PREFIX}/token/refresh", view_func=refresh_token, methods=["POST"])
    blueprint.add_url_rule(f"{PREFIX}/login", view_func=login, methods=["POST"])
    blueprint.add_url_rule(f"{PREFIX}/logout", view_func=logout, methods=["POST"])
    blueprint.add_url_rule(f"{PREFIX}/me", view_func=me, methods=["GET"])
    blueprint.add_url_rule(f"{ADMIN_PREFIX}/staff", view_func=list_staff, methods=["GET"])
    return blueprint


def _auth() -> Auth:
    return auth_of(current_kernel())


def _signed_in() -> Principal:
    principal = current_principal()
    if principal is None:
        raise unauthorized()
    return principal


def _token_pair(auth: Auth, customer_id: str, refresh_token: str) -> TokenPair:
    return TokenPair(
        access_token=auth.tokens.issue(customer_id, str(tenant_id_var.get()), Role.CUSTOMER),
        expires_in=auth.settings.access_ttl_seconds,
        refresh_token=refresh_token,
    )


@openapi_extra(responses=problem_responses({503: "`service_unavailable`: the code could not be sent; try again"}))
@validate_request(CodeRequest)
@validate_response(CodeSent, 202)
async def request_code(data: CodeRequest) -> tuple[CodeSent, int]:
    """Send a 6-digit sign-in code to a mobile number (any common format); valid for 5 minutes."""
    auth = _auth()
    await otp.request_code(auth, data.phone)
    return CodeSent(expires_in=auth.settings.otp_ttl_seconds), 202


@openapi_extra(responses=problem_responses({401: "`unauthorized`: the code is wrong, expired, used or locked"}))
@validate_request(CodeVerify)
@validate_response(TokenPair)
async def verify_code(data: CodeVerify) -> TokenPair | Response:
    """Trade a live code for an access token and a refresh token; 401 for a wrong, expired, used or locked code."""
    auth = _auth()
    if not await otp.check_code(auth, data.phone, data.code):
        return unauthorized("The code is wrong, expired or used up: request a new one.").to_response()
    customer_id = await otp.customer_for(data.phone)
    return _token_pair(auth, customer_id, await refresh.issue(auth, customer_id))


@openapi_extra(responses=problem_responses({401: "`unauthorized`: the refresh token is not valid"}))
@validate_request(RefreshRequest)
@validate_response(TokenPair)
async def refresh_token(data: RefreshRequest) -> TokenPair | Response:
    """Trade a refresh token for a new pair; each works once, and reusing one signs its family out."""
    auth = _auth()
    rotated = await refresh.rotate(auth, data.refresh_token)
    if rotated is None:
        return unauthorized("The refresh token is not valid: sign in again.").to_response()
    customer_id, successor = rotated
    return _token_pair(auth, customer_id, successor)


@openapi_extra(responses=problem_responses({401: "`unauthorized`: wrong e-mail address or password"}))
@validate_request(LoginRequest)
@validate_response(Me)
async def login(data: LoginRequest) -> Me:
    """Staff sign-in: sets the session cookie (HttpOnly) and the CSRF cookie the panel repeats in X-CSRF-Token."""
    auth = _auth()
    found = await staff.authenticate(data.email, data.password)
    if found is None:
        raise unauthorized("Wrong e-mail address or password.")
    token = await sessions.start(auth, found.id)

    @after_this_request
    async def set_cookies(response: Response) -> Response:
        cookies.set_login_cookies(auth, response, token)
        return response

    return Me(user_id=found.id, tenant_id=str(tenant_id_var.get()), role=found.role)


@validate_request(LogoutRequest)
async def logout(data: LogoutRequest) -> Response:
    """End the staff session (server-side, and the cookies), or revoke a customer's refresh-token family."""
    auth = _auth()
    principal = _signed_in()
    response = Response(status=204)
    if principal.session_id is not None:
        await sessions.end(principal.session_id)
        cookies.clear_login_cookies(auth, response)
    elif data.refresh_token is not None:
        await refresh.revoke(data.refresh_token, principal.user_id)
    return response


@validate_response(Me)
async def me() -> Me:
    """Whom the access token or session cookie belongs to."""
    principal = _signed_in()
    return Me(user_id=principal.user_id, tenant_id=principal.tenant_id, role=principal.role)


@require_staff(Role.OWNER)
@validate_response(StaffList)
async def list_staff() -> StaffList:
    """The store's staff (owners only)."""
    return StaffList(staff=[StaffMember(id=s.id, email=s.email, role=s.role) for s in await staff.list_all()])
