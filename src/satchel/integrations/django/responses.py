"""Django responses for the shared API's :class:`~satchel.integrations.http_api.ApiResponse`."""

from __future__ import annotations

from collections.abc import Iterable
from http.cookies import Morsel
from typing import Any

from django.http import HttpResponse

from satchel.integrations.http_api import ApiResponse


class _RawMorsel(Morsel[str]):
    """A cookie sent exactly as satchel's transport wrote its ``Set-Cookie`` line.

    Django sends each morsel of ``response.cookies`` as one ``Set-Cookie`` header (and its
    test client keeps them in its jar); re-building them with ``set_cookie`` would change
    their attributes.
    """

    def __init__(self, header: str) -> None:
        super().__init__()
        name, _, rest = header.partition("=")
        value = rest.split(";", 1)[0].strip()
        self.set(name.strip(), value, value)
        self._raw = header
        if "max-age=0" in header.lower():
            self["max-age"] = 0  # the test client's jar reads it to forget the cookie

    def OutputString(self, attrs: Any = None) -> str:
        return self._raw


def add_set_cookies(response: HttpResponse, values: Iterable[str]) -> None:
    """Send each of ``values`` (``Set-Cookie`` header values) with ``response``."""
    for value in values:
        morsel = _RawMorsel(value)
        dict.__setitem__(response.cookies, morsel.key, morsel)


def add_headers(response: HttpResponse, headers: Iterable[tuple[str, str]]) -> None:
    """Add ``headers``; cookies as their own lines, Cache-Control only when there is none."""
    for name, value in headers:
        lowered = name.lower()
        if lowered == "set-cookie":
            add_set_cookies(response, [value])
        elif lowered == "cache-control" and response.has_header("Cache-Control"):
            continue
        else:
            response[name] = value


def to_django(api: ApiResponse) -> HttpResponse:
    """An :class:`HttpResponse` with the status, JSON body and headers of ``api``."""
    response = HttpResponse(api.content(), status=api.status)
    if api.body is not None:
        response["Content-Type"] = "application/json"
    else:
        del response["Content-Type"]
    add_headers(response, api.headers)
    return response
