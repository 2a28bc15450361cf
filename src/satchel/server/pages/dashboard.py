"""The dashboard: who I am, what my browser carries, and what the server remembers.

Cookies are shown by name and attributes only, never by value; a signed token is shown
decoded (header and claims), with the signature reduced to its length.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from fastapi import APIRouter, Response
from starlette.requests import Request

from satchel.integrations.fastapi import OptionalIdentity, get_auth
from satchel.integrations.refresh import cookie_transport
from satchel.jose import b64
from satchel.server.pages.access import csrf_for, page_identity, to_login
from satchel.server.pages.devices import current_record
from satchel.server.pages.forms import page_context
from satchel.server.pages.render import render
from satchel.server.useragent import describe
from satchel.strategies.session_policy import is_remembered
from satchel.transports.cookie import CookieTransport
from satchel.transports.csrf import CSRFProtect

#: Longest token the dashboard will decode for display.
MAX_SHOWN_TOKEN = 8192

router = APIRouter(include_in_schema=False)


@dataclass(frozen=True, slots=True)
class CookieView:
    """A cookie as the server sets it (attributes only, never the value)."""

    name: str
    purpose: str
    attributes: list[str]
    sent: bool
    length: int | None


def _cookie_pairs(request: Request) -> dict[str, int]:
    """Names of the cookies this request carries, with the length of each value."""
    out: dict[str, int] = {}
    for key, raw in request.scope.get("headers") or ():
        if key != b"cookie":
            continue
        for part in raw.decode("latin-1").split(";"):
            name, sep, value = part.strip().partition("=")
            if sep and name:
                out[name] = len(value.strip())
    return out


def _attributes(
    *, path: str, domain: str | None, secure: bool, http_only: bool, same_site: str
) -> list[str]:
    attrs = [f"Path={path}"]
    if domain:
        attrs.append(f"Domain={domain}")
    if secure:
        attrs.append("Secure")
    if http_only:
        attrs.append("HttpOnly")
    attrs.append(f"SameSite={same_site}")
    return attrs


def cookie_views(
    request: Request, cookie: CookieTransport | None, csrf: CSRFProtect, max_age: int | None
) -> list[CookieView]:
    """The cookies satchel sets on a browser, and whether this request carried each."""
    sent = _cookie_pairs(request)
    views: list[CookieView] = []
    if cookie is not None:
        attrs = _attributes(
            path=cookie.path,
            domain=cookie.domain,
            secure=cookie.secure,
            http_only=cookie.http_only,
            same_site=cookie.same_site,
        )
        if max_age is not None:
            attrs.insert(0, f"Max-Age={max_age}")
        views.append(
            CookieView(
                cookie.cookie_name,
                "Session credential",
                attrs,
                cookie.cookie_name in sent,
                sent.get(cookie.cookie_name),
            )
        )
        if cookie.refresh_name in sent:
            views.append(
                CookieView(
                    cookie.refresh_name,
                    "Refresh token (sent only to the refresh endpoint)",
                    _attributes(
                        path=cookie.refresh_path,
                        domain=cookie.domain,
                        secure=cookie.secure,
                        http_only=cookie.http_only,
                        same_site=cookie.same_site,
                    ),
                    True,
                    sent.get(cookie.refresh_name),
                )
            )
    views.append(
        CookieView(
            csrf.cookie_name,
            "Binds the sign-in form's CSRF token (no credential)",
            _attributes(path="/", domain=None, secure=csrf.secure, http_only=True, same_site="Lax"),
            csrf.cookie_name in sent,
            sent.get(csrf.cookie_name),
        )
    )
    return views


def _b64json(segment: str) -> dict[str, Any] | None:
    try:
        value = json.loads(b64.decode(segment))
    except (ValueError, RecursionError):
        return None
    return value if isinstance(value, dict) else None


def decode_jwt_parts(token: str | None) -> tuple[dict[str, Any], dict[str, Any]] | None:
    """Header and claims of a (verified) compact JWS, for display; the signature is not kept."""
    if not token or token.count(".") != 2 or len(token) > MAX_SHOWN_TOKEN:
        return None
    header_b64, claims_b64, _ = token.split(".")
    header, claims = _b64json(header_b64), _b64json(claims_b64)
    if header is None or claims is None:
        return None
    return header, claims


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
    token = cookie.extract(request.scope.get("headers") or ()) if cookie is not None else None
    jwt_parts = decode_jwt_parts(token) if identity.strategy != "session" else None
    max_age: int | None = None
    if record is not None:
        max_age = int(record.absolute_expires_at - record.created_at)
    elif jwt_parts is not None:
        exp, iat = jwt_parts[1].get("exp"), jwt_parts[1].get("iat")
        if isinstance(exp, int | float) and isinstance(iat, int | float):
            max_age = int(exp - iat)
    return render(
        "dashboard.html",
        active="dashboard",
        record=record,
        remembered=record is not None and is_remembered(record),
        device=describe(record.user_agent) if record is not None else None,
        cookies=cookie_views(request, cookie, csrf, max_age),
        jwt_header=json.dumps(jwt_parts[0], indent=2, sort_keys=True) if jwt_parts else None,
        jwt_claims=json.dumps(jwt_parts[1], indent=2, sort_keys=True) if jwt_parts else None,
        signature_chars=len(token.rsplit(".", 1)[1]) if jwt_parts and token else None,
        token_chars=len(token) if token else None,
        **context,
    )
