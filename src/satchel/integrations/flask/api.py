"""The ``/auth/*`` JSON API as a Flask blueprint: the shared handlers of
:mod:`satchel.integrations.http_api`, the same routes, bodies and errors as the FastAPI
integration and the reference server."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import TYPE_CHECKING

from flask import Blueprint, Flask, Response, request
from werkzeug.exceptions import HTTPException, MethodNotAllowed, RequestEntityTooLarge

from satchel.integrations.flask.glue import csrf_exempt, to_response
from satchel.integrations.http_api import ROUTES, Route, http_error_response
from satchel.integrations.http_api.messages import MAX_FORM_FIELDS
from satchel.integrations.sync.environ import content_length

if TYPE_CHECKING:
    from satchel.integrations.flask.extension import Satchel

_PARAM = re.compile(r"\{(\w+)\}")


def flask_path(path: str) -> str:
    """``/auth/sessions/{session_id}`` in Flask's spelling, ``/auth/sessions/<session_id>``."""
    return _PARAM.sub(r"<\1>", path)


def blueprint(ext: Satchel) -> Blueprint:
    """A blueprint serving every route of :data:`~satchel.integrations.http_api.ROUTES`."""
    bp = Blueprint("satchel", __name__)
    for route in ROUTES:
        bp.add_url_rule(
            flask_path(route.path),
            endpoint=route.name,
            view_func=_view(ext, route),
            methods=[route.method],
        )
    bp.register_error_handler(HTTPException, _http_error)
    return bp


def _view(ext: Satchel, route: Route) -> Callable[..., Response]:
    limit = ext.sync.settings.max_body_bytes

    def view(**params: str) -> Response:
        declared = content_length(request.environ)
        if declared is not None and declared > limit:
            raise RequestEntityTooLarge(f"The request body exceeds {limit} bytes.")
        # Also bounds a body sent without a length, and the parts of a multipart form.
        request.max_content_length = limit
        request.max_form_parts = MAX_FORM_FIELDS * 2
        found = ext.resolution()
        api = ext.api_request(found, with_form=route.needs_loop, params=params)
        if route.method != "GET" and api.form is None:
            api.body = request.get_data(cache=True)
        return to_response(ext.sync.handle(route, api))

    view.__name__ = f"satchel_{route.name}"
    # Each route runs the same CSRF check itself, where the FastAPI routes do.
    return csrf_exempt(view)


def _http_error(error: HTTPException) -> Response:
    status = error.code or 500
    detail: str | None = None  # the status phrase, as the FastAPI routes answer
    if isinstance(error, RequestEntityTooLarge):
        text = error.description if isinstance(error.description, str) else ""
        detail = text if text.startswith("The request") else "The request body is too large."
    response = to_response(http_error_response(status, detail))
    if status == 413:
        response.headers["Connection"] = "close"
    if isinstance(error, MethodNotAllowed) and error.valid_methods:
        response.headers["Allow"] = ", ".join(sorted(error.valid_methods))
    return response


def json_method_errors(app: Flask, url_prefix: str) -> None:
    """405 on the API's paths as JSON too (a routing error never reaches the blueprint).

    Registered only when the app has no 405 handler of its own; other paths keep Flask's.
    """
    if app.error_handler_spec.get(None, {}).get(405):
        return
    prefixes = tuple(url_prefix + p for p in ("/auth/", "/.well-known/jwks.json", "/healthz"))

    def handle(error: MethodNotAllowed) -> Response | MethodNotAllowed:
        return _http_error(error) if request.path.startswith(prefixes) else error

    app.register_error_handler(MethodNotAllowed, handle)
