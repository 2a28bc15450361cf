"""A one-module Django project for the frameworks table, served by gunicorn (sync workers).

``BENCH_DJANGO=none``: no authentication (the same view, nobody checked).
``BENCH_DJANGO=db``: Django's own authentication over its ``db`` session backend
(``SessionMiddleware`` + ``AuthenticationMiddleware``: each request reads the session row,
then the user row). ``BENCH_DJANGO=satchel``: satchel's ``SatchelMiddleware`` with its
strategy and store from ``SATCHEL_*``. The protected view is the same in all three. SQLite
file ``BENCH_DB``; ``application`` is the WSGI app.
"""

from __future__ import annotations

import os
from typing import Any

import django
from django.conf import settings

MODE = os.environ.get("BENCH_DJANGO", "db")
USERNAME = "bench"
PASSWORD = "bench-password-not-a-secret"

if not settings.configured:
    apps = ["django.contrib.contenttypes", "django.contrib.auth"]
    middleware: list[str] = []
    if MODE == "db":
        apps.append("django.contrib.sessions")
        middleware = [
            "django.contrib.sessions.middleware.SessionMiddleware",
            "django.contrib.auth.middleware.AuthenticationMiddleware",
        ]
    elif MODE == "satchel":
        apps.append("satchel.integrations.django")
        middleware = ["satchel.integrations.django.SatchelMiddleware"]
    settings.configure(
        DEBUG=False,
        SECRET_KEY=os.environ.get("BENCH_SECRET", "unset"),
        ALLOWED_HOSTS=["127.0.0.1", "localhost"],
        ROOT_URLCONF=__name__,
        INSTALLED_APPS=apps,
        MIDDLEWARE=middleware,
        DATABASES={
            "default": {
                "ENGINE": "django.db.backends.sqlite3",
                "NAME": os.environ.get("BENCH_DB", "django-bench.db"),
            }
        },
        SESSION_ENGINE="django.contrib.sessions.backends.db",
        USE_TZ=True,
        # The benchmark account's hash is checked once, at login; keep that cheap.
        PASSWORD_HASHERS=["django.contrib.auth.hashers.MD5PasswordHasher"],
        SATCHEL={"users": "satchel"},
    )
    django.setup()

from django.http import HttpRequest, HttpResponse, JsonResponse  # noqa: E402
from django.urls import path  # noqa: E402
from django.views.decorators.csrf import csrf_exempt  # noqa: E402


def who(request: HttpRequest) -> str | None:
    """The logged-in username, however the mode authenticates."""
    if MODE == "none":
        return ""
    if MODE == "db":
        user: Any = request.user
        return str(user.username) if user.is_authenticated else None
    identity = getattr(request, "identity", None)
    return None if identity is None else str(identity.username)


def me(request: HttpRequest) -> HttpResponse:
    """The protected view."""
    name = who(request)
    if name is None:
        return JsonResponse({"error": "not_authenticated"}, status=401)
    return JsonResponse({"user": name or None})


@csrf_exempt
def login(request: HttpRequest) -> HttpResponse:
    """Django's own login (db mode): sets the ``sessionid`` cookie."""
    from django.contrib.auth import authenticate
    from django.contrib.auth import login as django_login

    user = authenticate(request, username=USERNAME, password=PASSWORD)
    if user is None:
        return JsonResponse({"error": "invalid_login"}, status=401)
    django_login(request, user)
    return JsonResponse({"ok": True})


urlpatterns = [path("me", me), path("login", login)]


def _prepare_database() -> None:
    from django.contrib.auth.models import User
    from django.core.management import call_command

    call_command("migrate", verbosity=0, interactive=False)
    if MODE == "db" and not User.objects.filter(username=USERNAME).exists():
        User.objects.create_user(USERNAME, password=PASSWORD)


_prepare_database()

from django.core.wsgi import get_wsgi_application  # noqa: E402

application = get_wsgi_application()
