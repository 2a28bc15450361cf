"""The dashboard: who I am, what my browser carries, and what the server remembers.

Cookies are shown by name, attributes and lifetime, never by value (see
:mod:`~satchel.server.pages.credentials`); a signed token is shown decoded (header and
claims), with the signature reduced to its length.
"""

from __future__ import annotations

import json

from fastapi import APIRouter, Response
from starlette.requests import Request

from satchel.integrations.fastapi import OptionalIdentity, get_auth
from satchel.integrations.refresh import cookie_transport
from satchel.server.pages.access import csrf_for, page_identity, to_login
from satchel.server.pages.credentials import cookie_lengths, credential_cookies, decode_jwt_parts
from satchel.server.pages.devices import current_record
from satchel.server.pages.forms import page_context
from satchel.server.pages.render import render
from satchel.server.useragent import describe
from satchel.strategies.session_policy import is_remembered

router = APIRouter(include_in_schema=False)


@router.get("/")
async def dashboard(request: Request, identity: OptionalIdentity) -> Response:
    """Who I am, what my browser carries and what the server remembers about this session."""
    auth = get_auth(request)
    identity = page_identity(request, identity)
    if identity is None:
        return to_login(request, auth)
    context = await page_context(request, auth, identity)
    csrf = csrf_for(auth)
    cookie = cookie_transport(auth)
    record = await current_record(auth, identity)
    headers = request.scope.get("headers") or ()
    token = cookie.extract(headers) if cookie is not None else None
    jwt_parts = decode_jwt_parts(token) if identity.strategy != "session" else None
    claims = jwt_parts[1] if jwt_parts is not None else None
    cookies = (
        credential_cookies(
            strategy=identity.strategy,
            cookie=cookie,
            csrf=csrf,
            record=record,
            claims=claims,
            refreshes=auth.can_refresh,
            sent=cookie_lengths(headers),
            now=context["now"],
        )
        if cookie is not None
        else []
    )
    return render(
        "dashboard.html",
        active="dashboard",
        record=record,
        remembered=record is not None and is_remembered(record),
        device=describe(record.user_agent) if record is not None else None,
        cookies=cookies,
        http_only=cookie is None or cookie.http_only,
        refresh_path=cookie.refresh_path if cookie is not None else None,
        can_refresh=auth.can_refresh,
        jwt_header=json.dumps(jwt_parts[0], indent=2, sort_keys=True) if jwt_parts else None,
        jwt_claims=json.dumps(jwt_parts[1], indent=2, sort_keys=True) if jwt_parts else None,
        signature_chars=len(token.rsplit(".", 1)[1]) if jwt_parts and token else None,
        token_chars=len(token) if token else None,
        **context,
    )
