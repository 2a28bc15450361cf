"""Turning a template into a response: the Jinja environment, the pages' security headers,
redirects and the error page.

Templates are autoescaped and strict (an undefined name is an error, not an empty string).
No script runs on any page, so the content security policy forbids every script outright.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Any, Final

import jinja2
from fastapi import Response
from fastapi.responses import HTMLResponse, RedirectResponse

from satchel.server.pages.formatting import format_span, format_time, iso_time, relative
from satchel.server.pages.static import static_url

#: Role that opens the admin page (and shows its link in the navigation).
ADMIN_ROLE: Final = "admin"

TEMPLATES_DIR: Final = Path(__file__).resolve().parent.parent / "templates"

_CSP = (
    "default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'; "
    "frame-ancestors 'none'; base-uri 'none'"
)
_PAGE_HEADERS: Final = (
    ("Content-Security-Policy", _CSP),
    ("X-Frame-Options", "DENY"),
    ("X-Content-Type-Options", "nosniff"),
    ("Referrer-Policy", "same-origin"),
    ("Cache-Control", "no-store"),
)
_ERROR_TITLES: Final = {
    400: "Bad request",
    403: "Not allowed",
    404: "Page not found",
    405: "Not allowed here",
    413: "Too large",
    422: "Bad request",
    429: "Too many requests",
    503: "Temporarily unavailable",
}
_ERROR_TEXTS: Final = {
    400: "The request could not be understood.",
    403: "You do not have access to this page.",
    404: "There is nothing at this address.",
    405: "This address does not accept that kind of request.",
    413: "The request was larger than this server accepts.",
    422: "Some of the submitted values were not valid.",
    429: "Too many attempts. Wait a little and try again.",
    503: "The authentication service is temporarily unavailable. Try again shortly.",
}

_env = jinja2.Environment(
    loader=jinja2.FileSystemLoader(TEMPLATES_DIR),
    autoescape=True,
    undefined=jinja2.StrictUndefined,
    trim_blocks=True,
    lstrip_blocks=True,
)
_env.globals.update(
    static_url=static_url,
    format_time=format_time,
    iso_time=iso_time,
    relative=relative,
    format_span=format_span,
)


def apply_headers(response: Response, headers: Iterable[tuple[str, str]]) -> None:
    """Add ``headers`` to ``response``; a Cache-Control replaces the one already set."""
    for name, value in headers:
        if name.lower() == "cache-control":
            response.headers["Cache-Control"] = value
        else:
            response.headers.append(name, value)


def render(
    template: str,
    *,
    status: int = 200,
    headers: Iterable[tuple[str, str]] = (),
    **context: Any,
) -> HTMLResponse:
    """An HTML response of ``template`` with the pages' security headers."""
    context.setdefault("identity", None)
    context.setdefault("csrf_token", None)
    context.setdefault("notice", None)
    context.setdefault("error", None)
    context.setdefault("active", None)
    identity = context["identity"]
    context.setdefault("is_admin", identity is not None and identity.has_role(ADMIN_ROLE))
    body = _env.get_template(template).render(**context)
    response = HTMLResponse(body, status_code=status)
    apply_headers(response, _PAGE_HEADERS)
    apply_headers(response, headers)
    return response


def redirect(url: str, headers: Iterable[tuple[str, str]] = ()) -> RedirectResponse:
    """A 303 (the browser follows it with a GET) that is never cached."""
    response = RedirectResponse(url, status_code=303)
    response.headers["Cache-Control"] = "no-store"
    apply_headers(response, headers)
    return response


def error_page(
    status: int, detail: str | None = None, headers: Iterable[tuple[str, str]] = ()
) -> HTMLResponse:
    """The page for an error: its status, a fixed title and an explanation written here."""
    title = _ERROR_TITLES.get(status, "Something went wrong")
    text = detail or _ERROR_TEXTS.get(status, "The server could not complete the request.")
    return render(
        "error.html", status=status, headers=headers, status_code=status, title=title, text=text
    )
