"""What the Flask extension and its blueprint share: responses and the CSRF exemption mark."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from flask import Response

from satchel.integrations.http_api import ApiResponse

F = TypeVar("F", bound=Callable[..., Any])

_EXEMPT = "_satchel_csrf_exempt"


def csrf_exempt(view: F) -> F:
    """Skip satchel's CSRF check for this view (it protects itself, or changes nothing)."""
    setattr(view, _EXEMPT, True)
    return view


def is_csrf_exempt(view: object) -> bool:
    """True for a view marked with :func:`csrf_exempt`."""
    return bool(getattr(view, _EXEMPT, False))


def to_response(api: ApiResponse) -> Response:
    """A Flask response for an :class:`ApiResponse`."""
    response = Response(api.content(), status=api.status)
    if api.body is not None:
        response.mimetype = "application/json"
    else:
        del response.headers["Content-Type"]
    for name, value in api.headers:
        response.headers.add(name, value)
    return response
