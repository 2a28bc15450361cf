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

from satchel.auth import Auth
from satchel.dbsc.binding import DeviceBinding
from satchel.errors import MissingCredential, NotFound
from satchel.identity import Identity
from satchel.integrations.fastapi.deps import get_auth
from satchel.integrations.fastapi.routes.requests import apply_headers
from satchel.transports.csrf import scope_origin

router = APIRouter(include_in_schema=False)


def _binding(auth: Auth) -> DeviceBinding:
    if auth.dbsc is None:
        raise NotFound("Device bound sessions are not enabled here.")
    return auth.dbsc


async def _session(auth: Auth, request: Request) -> Identity:
    """The session of the request's session cookie (the bound cookie is not asked for)."""
    cookie = auth.transport_by_name.get("cookie")
    headers = request.scope.get("headers") or ()
    token = cookie.extract(headers) if cookie is not None else None
    if token is None:
        raise MissingCredential("Device bound session requests need the session cookie.")
    return (await auth.strategy.authenticate(token)).with_transport("cookie")


def _answer(body: dict[str, object], headers: list[tuple[str, str]]) -> Response:
    response = JSONResponse(body)
    apply_headers(response, headers)
    return response


@router.post("/auth/dbsc/register")
async def register(request: Request) -> Response:
    """Registration: the proof's key becomes the session's device key; the answer is the
    session instructions and the first bound cookie."""
    auth = get_auth(request)
    binding = _binding(auth)
    identity = await _session(auth, request)
    body, headers = await binding.register(
        identity, request.scope.get("headers") or (), scope_origin(request.scope)
    )
    return _answer(body, headers)


@router.post("/auth/dbsc/refresh")
async def refresh(request: Request) -> Response:
    """Refresh: 403 and a challenge, then a new bound cookie for a proof of the device key."""
    auth = get_auth(request)
    binding = _binding(auth)
    identity = await _session(auth, request)
    body, headers = await binding.refresh(
        identity, request.scope.get("headers") or (), scope_origin(request.scope)
    )
    return _answer(body, headers)
