"""What the browser holds: the dashboard's description of each cookie the server set.

A request carries cookie names and values only, so each cookie is described from what
decided its ``Set-Cookie``: the transport's attributes (:meth:`CookieTransport.attributes`),
whether the sign-in was remembered (``Max-Age`` only then, else a browser-session cookie),
and the lifetime the strategy gave the credential, recomputed from the session record and
the token's claims the way the strategy computed it when it issued them. Values are never
shown; a signed token is shown decoded (header and claims), its signature only counted.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from satchel.jose import b64
from satchel.server.pages.formatting import format_span, format_time, relative
from satchel.stores.base import SessionRecord
from satchel.strategies.session_policy import is_remembered
from satchel.transports.cookie import CookieTransport
from satchel.transports.csrf import CSRFProtect

#: Longest token the dashboard will decode for display.
MAX_SHOWN_TOKEN = 8192


@dataclass(frozen=True, slots=True)
class CookieView:
    """One cookie as the server set it: never its value."""

    name: str
    holds: str
    purpose: str
    #: The ``Set-Cookie`` attributes, ``Max-Age`` first when the cookie persists.
    attributes: list[str]
    #: How long the browser keeps it, in words.
    kept: str
    sent: bool
    length: int | None
    #: Why it is not on this request, when it is not.
    absent: str = "not sent"


@dataclass(frozen=True, slots=True)
class Issued:
    """What a credential cookie's ``Set-Cookie`` said: ``Max-Age`` (None: a browser-session
    cookie, or unknown) and when the cookie ends in the browser."""

    remembered: bool | None  # None: the server cannot tell (a stateless token)
    max_age: int | None
    ends_at: float | None


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


def cookie_lengths(headers: Any) -> dict[str, int]:
    """Names of the cookies a request carries, with the length of each value."""
    out: dict[str, int] = {}
    for key, raw in headers or ():
        if key != b"cookie":
            continue
        for part in raw.decode("latin-1").split(";"):
            name, sep, value = part.strip().partition("=")
            if sep and name:
                out[name] = len(value.strip())
    return out


def _number(value: object) -> float | None:
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


def issued_at(record: SessionRecord | None, claims: Mapping[str, Any] | None) -> float | None:
    """When the credential in the cookie was issued, as exactly as the server knows it.

    A session token is issued with its record; an access token over a record (hybrid, or a
    jwt refresh family) at the login (``created_at``) or at the last refresh
    (``last_seen_at``, which only a refresh moves), the one whose whole second is the
    token's ``iat``. A JWT without a record keeps only ``iat``, the issue time rounded down.
    """
    iat = _number(claims.get("iat")) if claims is not None else None
    if record is None:
        return iat
    if iat is None:
        return record.created_at
    for moment in (record.last_seen_at, record.created_at):
        if math.floor(moment) == iat:
            return moment
    return iat


def _issued(remembered: bool | None, start: float | None, end: float | None) -> Issued:
    if start is None or end is None:
        return Issued(remembered, None, end)
    max_age = max(1, int(end - start))
    return Issued(remembered, max_age, start + max_age)


def access_issued(record: SessionRecord | None, claims: Mapping[str, Any] | None) -> Issued:
    """The access cookie's ``Max-Age`` and end, as the strategy computed ``expires_in``:
    the session's absolute end for an opaque session token, the ``exp`` claim for a JWT."""
    remembered = is_remembered(record) if record is not None else None
    start = issued_at(record, claims)
    if claims is None:
        end = record.absolute_expires_at if record is not None else None
    else:
        end = _number(claims.get("exp"))
    return _issued(remembered, start, end)


def refresh_issued(record: SessionRecord | None, claims: Mapping[str, Any] | None) -> Issued:
    """The refresh cookie's ``Max-Age`` and end: it lasts until the session's absolute end."""
    if record is None:
        return Issued(None, None, None)
    return _issued(is_remembered(record), issued_at(record, claims), record.absolute_expires_at)


def _kept(issued: Issued, now: float) -> str:
    if issued.remembered is False:
        return "Until the browser closes: a browser-session cookie (no Max-Age)"
    if issued.ends_at is None:
        return "Until the browser closes, unless you chose to be remembered"
    until = f"{format_time(issued.ends_at)} ({relative(issued.ends_at, now)})"
    if issued.remembered:
        return f"Until {until}, also across browser restarts"
    # A stateless token does not say whether the sign-in was remembered.
    return (
        "Until the browser closes; if you chose “Remember this device”, "
        f"until {until} (Max-Age={issued.max_age}). The token does not record which."
    )


def _with_age(issued: Issued, attributes: list[str]) -> list[str]:
    if issued.remembered and issued.max_age is not None:
        return [f"Max-Age={issued.max_age}", *attributes]
    return attributes


def credential_cookies(
    *,
    strategy: str,
    cookie: CookieTransport,
    csrf: CSRFProtect,
    record: SessionRecord | None,
    claims: Mapping[str, Any] | None,
    refreshes: bool,
    sent: Mapping[str, int],
    now: float,
) -> list[CookieView]:
    """The cookies satchel set on this browser, and whether this request carried each."""
    access = access_issued(record, claims)
    if strategy == "session":
        holds = "An opaque session token, id.secret"
        purpose = "Session credential: the server looks it up on each request"
    else:
        holds = "A signed JWT (access token)"
        iat, exp = (_number(claims.get(k)) for k in ("iat", "exp")) if claims else (None, None)
        lifetime = f", valid {format_span(exp - iat)}" if iat is not None and exp else ""
        session = "; names this session" if record is not None else ""
        purpose = f"Access token: checked by its signature on each request{lifetime}{session}"
    views = [
        CookieView(
            cookie.cookie_name,
            holds,
            purpose,
            _with_age(access, cookie.attributes()),
            _kept(access, now),
            cookie.cookie_name in sent,
            sent.get(cookie.cookie_name),
        )
    ]
    if refreshes:
        issued = refresh_issued(record, claims)
        views.append(
            CookieView(
                cookie.refresh_name,
                "An opaque refresh token, sid.generation.secret",
                f"Renews the access token; sent only to {cookie.refresh_path}, used once, "
                "then replaced",
                _with_age(issued, cookie.attributes(refresh=True)),
                _kept(issued, now),
                cookie.refresh_name in sent,
                sent.get(cookie.refresh_name),
                absent=f"not sent to this page (Path={cookie.refresh_path})",
            )
        )
    secure = ["Secure"] if csrf.secure else []
    views.append(
        CookieView(
            csrf.cookie_name,
            "A random nonce, no credential",
            "Binds the sign-in form's CSRF token",
            ["Path=/", *secure, "HttpOnly", "SameSite=Lax"],
            "Until the browser closes: a browser-session cookie (no Max-Age)",
            csrf.cookie_name in sent,
            sent.get(csrf.cookie_name),
        )
    )
    return views
