"""The ``/auth/*`` JSON API for a project's URLconf::

    urlpatterns = [..., path("", include("satchel.integrations.django.urls"))]

Route names are ``satchel:<name>`` (``satchel:login``, ``satchel:me``...).
"""

from __future__ import annotations

import re

from django.urls import URLPattern, path

from satchel.integrations.django.views import api_view
from satchel.integrations.http_api import ROUTES

app_name = "satchel"

_PARAM = re.compile(r"\{(\w+)\}")


def django_path(route_path: str) -> str:
    """``/auth/sessions/{session_id}`` in Django's spelling, ``auth/sessions/<str:session_id>``."""
    return _PARAM.sub(r"<str:\1>", route_path.lstrip("/"))


urlpatterns: list[URLPattern] = [
    path(django_path(route.path), api_view(route), name=route.name) for route in ROUTES
]
