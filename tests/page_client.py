"""A browser in front of the reference server's pages, for the page tests (``test_pages*``).

:class:`App` is a :class:`~apps.RunningApp` whose ``browser()`` is a client with its own
cookie jar and a browser's headers; :func:`sign_in` and :func:`post_form` submit forms as a
same-origin browser does (``Origin``, ``Sec-Fetch-Site`` and the page's ``csrf_token``).
Each test module declares the fixtures, from :func:`app_factory`.
"""

from __future__ import annotations

import html
import re
from collections.abc import Awaitable, Callable
from typing import Any

import httpx

from apps import Apps, RunningApp

PASSWORD = "correct horse battery"
BASE = "https://testserver"
COOKIE = "__Host-satchel"
REFRESH_COOKIE = "__Secure-satchel-refresh"
SAME_ORIGIN = {"origin": BASE, "sec-fetch-site": "same-origin"}
BROWSER = {"accept": "text/html,application/xhtml+xml,*/*;q=0.8"}
FIREFOX = "Mozilla/5.0 (X11; Ubuntu; Linux x86_64; rv:131.0) Gecko/20100101 Firefox/131.0"
IPHONE = (
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 "
    "(KHTML, like Gecko) Version/17.5 Mobile/15E148 Safari/604.1"
)
TOKEN_RE = re.compile(r'name="csrf_token" value="([^"]+)"')
USERS = {"root": ["admin"], "alice": ["staff"], "bob": []}


class App(RunningApp):
    def browser(self, agent: str = FIREFOX) -> httpx.AsyncClient:
        """A separate browser: own cookie jar, browser-like headers."""
        return self.fresh_client(headers={**BROWSER, "user-agent": agent})


AppFactory = Callable[..., Awaitable[App]]


def app_factory(make_app: Apps, store_kind: str) -> AppFactory:
    """Apps over ``store_kind`` with root (admin), alice (staff) and bob, browsers in front."""

    async def factory(**overrides: Any) -> App:
        return await make_app(store_kind, users=USERS, password=PASSWORD, cls=App, **overrides)

    return factory


def csrf_token(page: httpx.Response) -> str:
    match = TOKEN_RE.search(page.text)
    assert match, "the page has no CSRF token"
    return html.unescape(match.group(1))


async def post_form(
    client: httpx.AsyncClient, path: str, page_path: str, data: dict[str, str] | None = None
) -> httpx.Response:
    """Load ``page_path``, then submit a form of it to ``path`` as a same-origin browser."""
    page = await client.get(page_path)
    form = {"csrf_token": csrf_token(page), **(data or {})}
    return await client.post(path, data=form, headers=SAME_ORIGIN)


async def sign_in(
    client: httpx.AsyncClient, username: str = "alice", password: str = PASSWORD, **extra: str
) -> httpx.Response:
    return await post_form(
        client, "/login", "/login", {"username": username, "password": password, **extra}
    )


def session_cookie(client: httpx.AsyncClient) -> str | None:
    return client.cookies.get(COOKIE)


def refresh_cookie(client: httpx.AsyncClient) -> str | None:
    return next((c.value for c in client.cookies.jar if c.name == REFRESH_COOKIE), None)
