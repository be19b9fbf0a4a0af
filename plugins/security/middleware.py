"""The SECURITY stage, outermost of the plugins: everything inside it, errors included, leaves with its headers.

In order: a fresh CSP nonce (on `quart.g` for the views), a CORS preflight answered here (it never reaches
tenancy, rate limits or views), the CSRF check, the rest of the pipeline, then CORS and security headers on
whatever came back. Problems raised here become responses here, so they get the headers too.
"""

from __future__ import annotations

from quart import Request, Response, g

from kernel import CallNext, Problem, RequestMiddleware, Stage
from plugins.security.cors import Cors, is_preflight
from plugins.security.csp import new_nonce
from plugins.security.csrf import CsrfCheck
from plugins.security.headers import SecurityHeaders


class SecurityMiddleware(RequestMiddleware):
    stage = Stage.SECURITY

    def __init__(self, headers: SecurityHeaders, cors: Cors, csrf: CsrfCheck) -> None:
        self._headers = headers
        self._cors = cors
        self._csrf = csrf

    async def __call__(self, request: Request, call_next: CallNext) -> Response:
        nonce = g.csp_nonce = new_nonce()
        if is_preflight(request):
            response = await self._cors.preflight(request)
        else:
            try:
                await self._csrf(request)
                response = await call_next()
            except Problem as problem:
                response = problem.to_response()
            await self._cors.decorate(request, response)
        self._headers.apply(response, request.path, nonce)
        return response
