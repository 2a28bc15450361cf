"""Django under test: the example project (examples/django_project) set up once per test
process over a fresh SQLite database, and a browser made of Django's own test client.

Django's test client sends every cookie of its jar on every path; a browser does not (the
hybrid refresh cookie goes only to ``/auth/refresh``). :class:`DjangoBrowser` keeps the jar
itself — Path and Max-Age honoured — and hands the client the ``Cookie`` header.
"""

from __future__ import annotations

import json as jsonlib
import os
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import stepup_flow
from api_flows import PASSWORD, Reply
from satchel.clock import ManualClock

ROOT = Path(__file__).resolve().parents[1]
PROJECT = ROOT / "examples" / "django_project"


def setup_django(database: Path) -> None:
    """Configure Django with the example project's settings (once per process)."""
    import django
    from django.conf import settings

    if settings.configured:
        return
    if str(PROJECT) not in sys.path:
        sys.path.insert(0, str(PROJECT))
    os.environ["DJANGO_SETTINGS_MODULE"] = "project.settings"
    os.environ["DJANGO_DATABASE"] = str(database)
    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0, interactive=False)


def wipe_accounts() -> None:
    """Delete every account, group and satchel row (tests share one database)."""
    from django.contrib.auth import get_user_model
    from django.contrib.auth.models import Group

    get_user_model().objects.all().delete()
    Group.objects.all().delete()


def _path_matches(cookie_path: str, path: str) -> bool:
    if path == cookie_path:
        return True
    prefix = cookie_path if cookie_path.endswith("/") else cookie_path + "/"
    return path.startswith(prefix)


class DjangoBrowser:
    """One browser: a :class:`django.test.Client` over https and a path-aware cookie jar."""

    def __init__(self) -> None:
        from django.test import Client

        self.client = Client(enforce_csrf_checks=True)  # as a real browser meets it
        self.jar: dict[str, tuple[str, str]] = {}  # name -> (value, path)

    def _cookie_header(self, path: str) -> str | None:
        pairs = [f"{n}={v}" for n, (v, p) in self.jar.items() if _path_matches(p, path)]
        return "; ".join(pairs) or None

    def _remember(self, response: Any) -> None:
        for morsel in response.cookies.values():
            line = morsel.OutputString()
            parts = [part.strip() for part in line.split(";")]
            name, _, value = parts[0].partition("=")
            attrs = {k.lower(): v for k, _, v in (p.partition("=") for p in parts[1:])}
            if attrs.get("max-age") == "0" or not value:
                self.jar.pop(name, None)
            else:
                self.jar[name] = (value, attrs.get("path") or "/")
        self.client.cookies.clear()

    def request(
        self,
        method: str,
        path: str,
        *,
        headers: Mapping[str, str] | None = None,
        json: Any = None,
        data: Mapping[str, str] | None = None,
        content: bytes | None = None,
        content_type: str | None = None,
    ) -> Reply:
        body: bytes | str = b""
        ctype = content_type or "application/octet-stream"
        if json is not None:
            body, ctype = jsonlib.dumps(json), "application/json"
        elif data is not None:
            body, ctype = urlencode(data), content_type or "application/x-www-form-urlencoded"
        elif content is not None:
            body = content
        sent = dict(headers or {})
        if not any(name.lower() == "cookie" for name in sent):
            cookie = self._cookie_header(path)
            if cookie is not None:
                sent["Cookie"] = cookie
        response = self.client.generic(
            method,
            path,
            data=body,
            content_type=ctype,
            secure=True,
            headers=sent,
        )
        self._remember(response)
        lines = list(response.items())
        lines.extend(("Set-Cookie", m.OutputString()) for m in response.cookies.values())
        return Reply(response.status_code, lines, response.content)


@dataclass
class DjangoRig:
    strategy: str
    clock: ManualClock
    users: dict[str, str] = field(default_factory=dict)

    def client(self) -> DjangoBrowser:
        return DjangoBrowser()

    def create_user(self, username: str, roles: Sequence[str] = ()) -> str:
        from satchel.integrations.django import get_sync

        user = get_sync().call(lambda a: a.users.create_user(username, PASSWORD, list(roles)))
        self.users[username] = user.id
        return user.id

    def reauthenticate(self, access_token: str) -> str:
        from satchel.integrations.django import get_sync

        return stepup_flow.renew(get_sync(), access_token)
