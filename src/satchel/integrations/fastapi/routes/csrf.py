"""CSRF for the JSON API: the check every unsafe cookie-session route depends on, and
``GET /auth/csrf`` handing out tokens for form posts."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Request, Response
from fastapi.responses import JSONResponse

from satchel.auth import Auth
from satchel.errors import NotSupported
from satchel.integrations.fastapi.deps import OptionalIdentity, get_auth
from satchel.integrations.fastapi.openapi import error_responses
from satchel.integrations.fastapi.routes.models import CSRFOut
from satchel.integrations.fastapi.routes.requests import FORM_TYPES, MAX_FORM_FIELDS, apply_headers
from satchel.transports.cookie import CookieTransport
from satchel.transports.csrf import FORM_FIELD, binding_for, content_type, needs_check, scope_origin

router = APIRouter()


async def _form_token(request: Request) -> str | None:
    """The ``csrf_token`` field of a form body, if the request has one."""
    if content_type(request.scope.get("headers") or ()) not in FORM_TYPES:
        return None
    form = await request.form(max_files=0, max_fields=MAX_FORM_FIELDS)
    value = form.get(FORM_FIELD)
    return value if isinstance(value, str) else None


def _cookie_names(auth: Auth) -> list[bytes]:
    cookie = auth.transport_by_name.get("cookie")
    if not isinstance(cookie, CookieTransport):
        return []
    return [cookie.cookie_name.encode("ascii"), cookie.refresh_name.encode("ascii")]


async def check_csrf(request: Request, identity: OptionalIdentity) -> None:
    """Dependency of every unsafe route that acts on the caller's cookie session.

    Requests without our cookies (bearer clients) pass untouched: a browser never adds an
    ``Authorization`` header by itself.
    """
    auth = get_auth(request)
    csrf = auth.csrf
    if csrf is None:
        return  # no cookie transport: nothing a browser attaches by itself
    headers = request.scope.get("headers") or ()
    if not needs_check(request.method, headers, _cookie_names(auth)):
        return
    binding = binding_for(identity) if identity is not None else None
    csrf.check(
        request.method,
        headers,
        own_origin=scope_origin(request.scope),
        binding=binding,
        form_token=await _form_token(request),
    )


#: ``dependencies=[CSRFChecked]`` on a route runs :func:`check_csrf` first.
CSRFChecked = Depends(check_csrf)


@router.get(
    "/auth/csrf",
    response_model=CSRFOut,
    responses=error_responses(400),
    summary="A CSRF token for form posts (login form or the current cookie session)",
)
async def csrf_token(request: Request, identity: OptionalIdentity) -> Response:
    """JSON requests need no token; forms send it as ``csrf_token`` (or ``X-CSRF-Token``).

    For a logged-in cookie session the token is bound to the session; otherwise it is bound
    to a pre-session cookie this response sets, for the login form.
    """
    auth = get_auth(request)
    csrf = auth.csrf
    if csrf is None:
        raise NotSupported("CSRF tokens are only used with the cookie transport.")
    extra: list[tuple[str, str]] = []
    if identity is not None and identity.transport == "cookie":
        token = csrf.token_for(identity)
    else:
        token, extra = csrf.login_form(request.scope.get("headers") or ())
    response = JSONResponse({"csrf_token": token})
    apply_headers(response, extra)
    response.headers["Cache-Control"] = "no-store"
    return response
