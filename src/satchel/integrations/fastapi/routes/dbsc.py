"""``POST /auth/dbsc/register`` and ``POST /auth/dbsc/refresh``: the DBSC endpoints.

The browser calls them on its own (draft dbsc-1), never a page or an API client, so they
are left out of the OpenAPI document like the HTML pages. Both authenticate the session
cookie alone: a refresh exists precisely because the bound cookie has expired. Neither takes
a CSRF token: a forged call can neither read the answer nor sign a challenge with the
device key, which only the browser holding the session can use (docs/security.md).
"""

from __future__ import annotations

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse

from satchel.integrations.fastapi.deps import get_auth
from satchel.integrations.fastapi.routes.requests import apply_headers
from satchel.integrations.http_api.routes import dbsc_session
from satchel.transports.csrf import scope_origin

router = APIRouter(include_in_schema=False)


def _answer(body: dict[str, object], headers: list[tuple[str, str]]) -> Response:
    response = JSONResponse(body)
    apply_headers(response, headers)
    return response


@router.post("/auth/dbsc/register")
async def register(request: Request) -> Response:
    """Registration: the proof's key becomes the session's device key; the answer is the
    session instructions and the first bound cookie."""
    headers = request.scope.get("headers") or ()
    binding, identity = await dbsc_session(get_auth(request), headers)
    body, extra = await binding.register(identity, headers, scope_origin(request.scope))
    return _answer(body, extra)


@router.post("/auth/dbsc/refresh")
async def refresh(request: Request) -> Response:
    """Refresh: 403 and a challenge, then a new bound cookie for a proof of the device key."""
    headers = request.scope.get("headers") or ()
    binding, identity = await dbsc_session(get_auth(request), headers)
    body, extra = await binding.refresh(identity, headers, scope_origin(request.scope))
    return _answer(body, extra)
