"""The ``/auth/*`` JSON API as Django views over the shared handlers of
:mod:`satchel.integrations.http_api`: the same routes, bodies and errors as the FastAPI
integration. They are exempt from Django's CSRF middleware and run satchel's own check,
so a bearer client needs no ``csrftoken`` and a browser gets the same rules everywhere."""

from __future__ import annotations

from collections.abc import Callable
from typing import cast

from django.core.exceptions import RequestDataTooBig, SuspiciousOperation
from django.http import HttpRequest, HttpResponse
from django.http.multipartparser import MultiPartParserError
from django.views.decorators.csrf import csrf_exempt

from satchel.errors import StoreUnavailable
from satchel.integrations.django.conf import get_sync
from satchel.integrations.django.middleware import attach, resolve
from satchel.integrations.django.responses import to_django
from satchel.integrations.http_api import ApiRequest, Route, http_error_response
from satchel.integrations.http_api.messages import FORM_TYPES
from satchel.integrations.sync.environ import all_headers, content_length

View = Callable[..., HttpResponse]


def _form(request: HttpRequest) -> tuple[dict[str, object], frozenset[str]]:
    """The form's first values (files included) and the names sent more than once."""
    form: dict[str, object] = {key: request.POST.get(key) for key in request.POST}
    form.update({key: request.FILES[key] for key in request.FILES})
    counts = [(k, len(request.POST.getlist(k)) + len(request.FILES.getlist(k))) for k in form]
    return form, frozenset(k for k, n in counts if n > 1)


def api_view(route: Route) -> View:
    """The Django view serving one shared API route."""

    def view(request: HttpRequest, **params: str) -> HttpResponse:
        sync = get_sync()
        if request.method != route.method:
            response = to_django(http_error_response(405))
            response["Allow"] = route.method
            return response
        limit = sync.settings.max_body_bytes
        declared = content_length(request.META)
        if declared is not None and declared > limit:
            return _too_large(limit)
        found = getattr(request, "satchel", None)
        if found is None:  # the middleware is not installed
            try:
                found = resolve(request)
            except StoreUnavailable as exc:
                return to_django(sync.error_response(exc))
            attach(request, found)
        api = ApiRequest(
            method=route.method,
            path=request.path,
            headers=all_headers(request.META),
            scheme=request.scheme or "http",
            peer=request.META.get("REMOTE_ADDR"),
            identity=found.identity,
            transport=found.transport,
            error=found.error,
            params=params,
            own_origin=f"{request.scheme}://{request.get_host()}",
        )
        try:
            if (request.content_type or "").lower() in FORM_TYPES:
                api.form, api.repeated = _form(request)
            elif route.method != "GET":
                api.body = request.body
        except RequestDataTooBig:
            return _too_large(limit)
        except (SuspiciousOperation, MultiPartParserError):
            return to_django(http_error_response(400, "The request body could not be read."))
        if len(api.body) > limit:
            return _too_large(limit)
        return to_django(sync.handle(route, api))

    view.__name__ = f"satchel_{route.name}"
    return cast(View, csrf_exempt(view))


def _too_large(limit: int) -> HttpResponse:
    response = to_django(http_error_response(413, f"The request body exceeds {limit} bytes."))
    response["Connection"] = "close"
    return response
