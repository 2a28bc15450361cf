"""How long the browser keeps satchel's cookies, and how the dashboard describes them.

"Remember this device" unticked gives browser-session cookies (no ``Max-Age``, no
``Expires``), the refresh cookie too; ticked, persistent ones. The dashboard must describe
what the browser really holds: the attributes of the ``Set-Cookie`` headers it received,
the right kind of credential, and the refresh cookie it never sends to a page.
"""

from __future__ import annotations

import html
import re

import httpx
import pytest

from apps import Apps
from page_client import (
    COOKIE,
    REFRESH_COOKIE,
    SAME_ORIGIN,
    AppFactory,
    app_factory,
    refresh_cookie,
    session_cookie,
    sign_in,
)
from satchel.clock import ManualClock
from satchel.server.pages.credentials import credential_cookies
from satchel.transports.cookie import CookieTransport
from satchel.transports.csrf import CSRFProtect


@pytest.fixture(params=["memory", "sqlite"])
def store_kind(request: pytest.FixtureRequest) -> str:
    kind: str = request.param
    return kind


@pytest.fixture
def make_app(make_app: Apps, store_kind: str) -> AppFactory:
    return app_factory(make_app, store_kind)


# --- remember this device -------------------------------------------------------------------


# What each strategy's cookies live for when remembered (ManualClock: whole seconds).
REMEMBERED_AGES = {
    "session": {COOKIE: 30 * 86_400},
    "jwt": {COOKIE: 900, REFRESH_COOKIE: 14 * 86_400},
    "hybrid": {COOKIE: 300, REFRESH_COOKIE: 30 * 86_400},
}


def our_cookies(response: httpx.Response) -> dict[str, dict[str, str]]:
    """The credential cookies ``response`` sets: name -> attributes (lower-case names)."""
    out: dict[str, dict[str, str]] = {}
    for header in response.headers.get_list("set-cookie"):
        pair, *attributes = (part.strip() for part in header.split(";"))
        name = pair.split("=", 1)[0]
        if name in (COOKIE, REFRESH_COOKIE):
            out[name] = {
                key.lower(): value for key, _, value in (a.partition("=") for a in attributes)
            }
    return out


def assert_lifetimes(response: httpx.Response, strategy: str, *, remembered: bool) -> None:
    cookies = our_cookies(response)
    assert set(cookies) == set(REMEMBERED_AGES[strategy]), response.headers
    for name, attributes in cookies.items():
        assert "expires" not in attributes
        if remembered:
            assert int(attributes["max-age"]) == REMEMBERED_AGES[strategy][name], name
        else:
            assert "max-age" not in attributes, name


@pytest.mark.parametrize("strategy", ["session", "jwt", "hybrid"])
async def test_remember_this_device_decides_whether_cookies_outlive_the_browser(
    make_app: AppFactory, strategy: str
) -> None:
    """Unticked: browser-session cookies (no Max-Age, no Expires), the refresh cookie too;
    ticked: persistent ones. The sign-in form and ``POST /auth/login`` behave the same."""
    app = await make_app(strategy=strategy)
    assert_lifetimes(await sign_in(app.browser()), strategy, remembered=False)
    assert_lifetimes(await app.login(client=app.browser()), strategy, remembered=False)
    assert_lifetimes(
        await app.login(client=app.browser(), remember=False), strategy, remembered=False
    )
    assert_lifetimes(await sign_in(app.browser(), remember="on"), strategy, remembered=True)
    assert_lifetimes(
        await app.login(client=app.browser(), remember=True), strategy, remembered=True
    )
    # The server-side time-outs are what they were: "remember" lengthens a session's, and
    # a jwt refresh family lives refresh_ttl either way.
    alice = await app.auth.users.get_by_name("alice")
    lifetimes = sorted(
        r.absolute_expires_at - r.created_at for r in await app.auth.list_sessions(alice.id)
    )
    if strategy == "jwt":
        assert lifetimes == [14 * 86_400] * 5
    else:
        assert lifetimes == [43_200] * 3 + [30 * 86_400] * 2


@pytest.mark.parametrize(("strategy", "days"), [("session", 30), ("jwt", 14), ("hybrid", 30)])
async def test_the_sign_in_page_says_how_long_a_remembered_sign_in_lasts(
    make_app: AppFactory, strategy: str, days: int
) -> None:
    app = await make_app(strategy=strategy)
    page = await app.browser().get("/login")
    assert f"Keeps you signed in after the browser closes, for up to {days} days." in page.text
    assert "closing the browser then signs you out" in page.text


@pytest.mark.parametrize("remembered", [False, True])
@pytest.mark.parametrize("strategy", ["jwt", "hybrid"])
async def test_a_refresh_keeps_the_cookies_persistence(
    make_app: AppFactory, strategy: str, remembered: bool
) -> None:
    app = await make_app(strategy=strategy)
    ages = REMEMBERED_AGES[strategy]
    client = app.browser()
    await sign_in(client, **({"remember": "on"} if remembered else {}))
    later = ages[COOKIE] + 100  # past the access token's lifetime and the leeway
    app.clock.advance(later)
    rotated = await client.get("/auth/refresh", params={"next": "/"})
    assert rotated.headers["location"] == "/"
    cookies = our_cookies(rotated)
    assert set(cookies) == {COOKIE, REFRESH_COOKIE}
    if remembered:
        assert cookies[COOKIE]["max-age"] == str(ages[COOKIE])
        assert cookies[REFRESH_COOKIE]["max-age"] == str(ages[REFRESH_COOKIE] - later)
    else:
        assert all("max-age" not in c and "expires" not in c for c in cookies.values())
    # The JSON refresh route rotates the same way.
    app.clock.advance(later)
    posted = await client.post("/auth/refresh", headers=SAME_ORIGIN)
    assert posted.status_code == 200, posted.text
    assert all(("max-age" in c) is remembered for c in our_cookies(posted).values())


@pytest.mark.parametrize("remembered", [False, True])
@pytest.mark.parametrize("strategy", ["session", "jwt", "hybrid"])
async def test_a_password_change_over_the_api_keeps_the_choice(
    make_app: AppFactory, strategy: str, remembered: bool
) -> None:
    """POST /auth/password issues the caller a new credential with the sign-in's "remember
    this device" choice (the pages' form and the JSON route alike)."""
    app = await make_app(strategy=strategy)
    client = app.browser()
    await sign_in(client, **({"remember": "on"} if remembered else {}))
    changed = await client.post(
        "/auth/password",
        json={"current_password": app.password, "new_password": "a whole new passphrase 42"},
        headers=SAME_ORIGIN,
    )
    assert changed.status_code == 200, changed.text
    cookies = our_cookies(changed)
    assert COOKIE in cookies
    assert all(("max-age" in c) is remembered for c in cookies.values())


# --- the dashboard: what the browser really holds ------------------------------------------


def cookie_row(page: httpx.Response, name: str) -> str:
    """The dashboard's table row describing cookie ``name``."""
    match = re.search(rf'<tr data-cookie="{re.escape(name)}">(.*?)</tr>', page.text, re.S)
    assert match, f"the dashboard does not describe {name}"
    return html.unescape(match.group(1))


def chips(row: str) -> list[str]:
    return re.findall(r'<span class="chip mono">([^<]+)</span>', row)


def set_cookie_attributes(response: httpx.Response, name: str) -> list[str]:
    """The attributes of the ``Set-Cookie`` for ``name`` in ``response``, in order."""
    header = next(h for h in response.headers.get_list("set-cookie") if h.startswith(name + "="))
    return [part.strip() for part in header.split(";")[1:]]


@pytest.mark.parametrize("remembered", [False, True], ids=["browser-session", "remembered"])
@pytest.mark.parametrize("strategy", ["session", "jwt", "hybrid"])
async def test_dashboard_describes_the_cookies_the_server_set(
    make_app: AppFactory, strategy: str, remembered: bool
) -> None:
    app = await make_app(strategy=strategy)
    client = app.browser()
    login = await sign_in(client, **({"remember": "on"} if remembered else {}))
    token = session_cookie(client)
    refresh = refresh_cookie(client)
    assert token
    page = await client.get("/")
    assert page.status_code == 200
    text = html.unescape(page.text)

    # Each credential cookie is shown with the attributes of the Set-Cookie it came with.
    names = [COOKIE] + ([REFRESH_COOKIE] if app.auth.can_refresh else [])
    assert (refresh is not None) is app.auth.can_refresh
    for name in names:
        row, issued = cookie_row(page, name), set_cookie_attributes(login, name)
        assert chips(row) == issued, name
        if remembered:
            assert "also across browser restarts" in row
        else:
            assert "Until the browser closes: a browser-session cookie (no Max-Age)" in row
    assert "Max-Age=43200" not in text  # the session's lifetime is no cookie's Max-Age

    access = cookie_row(page, COOKIE)
    if strategy == "session":
        assert "An opaque session token, id.secret" in access
        assert f"<code>id.secret</code> ({len(token)} characters)" in text
        assert "What the token says" not in text
    else:
        assert "A signed JWT (access token)" in access
        assert "opaque token, <code>id.secret</code>" not in text
        assert "What the token says" in text
        signature = token.rsplit(".", 1)[1]
        assert '"alg": "EdDSA"' in text and f'"sub": "{app.users["alice"]}"' in text
        assert f"signature ({len(signature)} characters) is left out" in text
        assert signature not in page.text
    if strategy != "session":
        row = cookie_row(page, REFRESH_COOKIE)
        assert "An opaque refresh token" in row
        assert "HttpOnly" in chips(row) and "Path=/auth/refresh" in chips(row)
        assert "not sent to this page (Path=/auth/refresh)" in row
        assert f"signed JWT access token ({len(token)} characters)" in text
    # Never a credential, nor a part of one that works alone.
    assert token not in page.text and token.split(".")[-1] not in page.text
    assert refresh is None or refresh.rsplit(".", 1)[1] not in page.text


@pytest.mark.parametrize("strategy", ["jwt", "hybrid"])
async def test_the_dashboard_follows_the_cookies_of_the_last_refresh(
    make_app: AppFactory, strategy: str
) -> None:
    app = await make_app(strategy=strategy)
    ages = REMEMBERED_AGES[strategy]
    client = app.browser()
    await sign_in(client, remember="on")
    later = ages[COOKIE] + 100
    app.clock.advance(later)
    rotated = await client.get("/auth/refresh", params={"next": "/"})
    page = await client.get(rotated.headers["location"])
    for name in (COOKIE, REFRESH_COOKIE):
        assert chips(cookie_row(page, name)) == set_cookie_attributes(rotated, name)
    refresh_age = f"Max-Age={ages[REFRESH_COOKIE] - later}"
    assert refresh_age in chips(cookie_row(page, REFRESH_COOKIE))


def test_a_stateless_token_is_described_without_guessing_the_choice() -> None:
    """A plain JWTStrategy keeps no record of the sign-in, so whether its cookie persists is
    unknown: the lifetime is told as that condition, and no Max-Age is claimed."""
    now = ManualClock()()
    claims = {"iat": int(now), "exp": int(now) + 900}
    views = credential_cookies(
        strategy="jwt",
        cookie=CookieTransport(),
        csrf=CSRFProtect(b"k" * 32),
        record=None,
        claims=claims,
        refreshes=False,
        sent={COOKIE: 400},
        now=now,
    )
    access = views[0]
    assert access.holds == "A signed JWT (access token)"
    assert access.attributes == CookieTransport().attributes()
    assert access.kept.startswith("Until the browser closes; if you chose")
    assert "(Max-Age=900). The token does not record which." in access.kept
    assert [v.name for v in views] == [COOKIE, "__Host-satchel-csrf"]
