"""The project's own views: satchel's identity next to Django's ``request.user``."""

from __future__ import annotations

import json
import os

from django.http import HttpRequest, JsonResponse
from django.views.decorators.http import require_POST

from satchel.integrations.django import fresh_login_required, login_required, roles_required


@login_required
def hello(request: HttpRequest) -> JsonResponse:
    return JsonResponse({"hello": request.identity.username})


@login_required
def whoami(request: HttpRequest) -> JsonResponse:
    # With the "django" user provider, request.user is the project's own user object.
    user = request.user
    return JsonResponse(
        {"identity": request.identity.user_id, "user": user.get_username(), "pk": str(user.pk)}
    )


@roles_required("admin")
def admin_only(request: HttpRequest) -> JsonResponse:
    return JsonResponse({"admin": request.identity.username})


@fresh_login_required()
def fresh(request: HttpRequest) -> JsonResponse:
    """A sensitive view: a sign-in within SATCHEL_FRESH_AGE, else 401 reauthentication_required."""
    return JsonResponse({"fresh": request.identity.username})


@fresh_login_required(max_age=60)
def fresh_minute(request: HttpRequest) -> JsonResponse:
    return JsonResponse({"fresh": request.identity.username})


def public(request: HttpRequest) -> JsonResponse:
    """Anyone; says who the caller is, if anyone (and which worker process answered)."""
    identity = request.identity
    return JsonResponse({"user": identity.username if identity else None, "pid": os.getpid()})


@require_POST
@login_required
def notes(request: HttpRequest) -> JsonResponse:
    """A state-changing view: Django's CSRF middleware guards it for cookie sessions."""
    text = (
        json.loads(request.body or b"null")
        if request.content_type == "application/json"
        else request.POST.get("text", "")
    )
    return JsonResponse({"note": text})
