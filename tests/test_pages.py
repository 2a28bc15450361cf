"""The HTML pages of the reference server, driven in-process through httpx like a browser.

Form posts carry what a browser sends for a same-origin form (``Origin`` and
``Sec-Fetch-Site: same-origin``) and the ``csrf_token`` scraped from the page. The real
Chromium runs are in tests/browser/; the cookies' lifetimes and the dashboard's account of
them are in test_pages_cookies.py.
"""

from __future__ import annotations

import html
import re
from pathlib import Path

import httpx
import pytest

from apps import Apps
from page_client import (
    BASE,
    BROWSER,
    COOKIE,
    FIREFOX,
    IPHONE,
    PASSWORD,
    REFRESH_COOKIE,
    SAME_ORIGIN,
    TOKEN_RE,
    App,
    AppFactory,
    app_factory,
    csrf_token,
    post_form,
    refresh_cookie,
    session_cookie,
    sign_in,
)
from satchel.integrations.refresh import safe_next
from satchel.server.pages.credentials import decode_jwt_parts
from satchel.server.pages.formatting import format_span, relative
from satchel.server.pages.notices import NOTICES
from satchel.server.pages.signin import is_loopback
from satchel.server.useragent import describe
from satchel.transports.cookie import CookieTransport


@pytest.fixture(params=["memory", "sqlite"])
def store_kind(request: pytest.FixtureRequest) -> str:
    kind: str = request.param
    return kind


@pytest.fixture
def make_app(make_app: Apps, store_kind: str) -> AppFactory:
    """This module's apps: root (admin), alice (staff) and bob, browsers in front."""
    return app_factory(make_app, store_kind)


@pytest.fixture
async def app(make_app: AppFactory) -> App:
    return await make_app()


# --- sign in ------------------------------------------------------------------------------


async def test_root_redirects_anonymous_browser_to_login(app: App) -> None:
    client = app.browser()
    response = await client.get("/")
    assert response.status_code == 303
    assert response.headers["location"] == "/login"
    page = await client.get("/login")
    assert page.status_code == 200
    assert page.headers["content-type"].startswith("text/html")
    # The one script is the bundled passkey ceremony: same origin only, never inline.
    csp = page.headers["content-security-policy"]
    assert "script-src 'self';" in csp and "unsafe" not in csp
    assert "frame-ancestors 'none'" in page.headers["content-security-policy"]
    assert page.headers["cache-control"] == "no-store"
    assert '<label for="username">Username</label>' in page.text
    assert '<label for="password">Password</label>' in page.text
    # The login form's token is bound to a pre-session cookie set with the page.
    assert "__Host-satchel-csrf=" in page.headers["set-cookie"]
    assert "HttpOnly" in page.headers["set-cookie"]


async def test_login_form_sets_cookie_and_shows_dashboard(app: App) -> None:
    client = app.browser()
    response = await sign_in(client)
    assert response.status_code == 303
    assert response.headers["location"] == "/"
    set_cookie = response.headers["set-cookie"]
    assert set_cookie.startswith(f"{COOKIE}=")
    for attribute in ("HttpOnly", "Secure", "SameSite=Lax", "Path=/"):
        assert attribute in set_cookie
    assert "Max-Age" not in set_cookie  # not remembered: a browser-session cookie
    token = session_cookie(client)
    assert token
    page = await client.get("/")
    assert page.status_code == 200
    assert "Signed in as" in page.text and "alice" in page.text
    assert "staff" in page.text
    assert "__Host-satchel" in page.text and "SameSite=Lax" in page.text
    # Neither the token nor its secret half is ever printed.
    assert token not in page.text
    assert token.split(".")[1] not in page.text
    assert "Firefox 131 on Ubuntu" in page.text


async def test_remember_me_gives_the_longer_lifetime(app: App) -> None:
    client = app.browser()
    response = await sign_in(client, remember="on")
    assert "Max-Age=2592000" in response.headers["set-cookie"]  # 30 days
    page = await client.get("/")
    assert "Yes: the cookies outlive the browser, with longer time-outs" in page.text


async def test_P01_wrong_password_and_unknown_user_get_the_same_generic_error(app: App) -> None:
    client = app.browser()
    wrong = await sign_in(client, "alice", "not the password")
    unknown = await sign_in(client, "nobody-here", "not the password")
    disabled_user = await app.auth.users.get_by_name("bob")
    await app.auth.set_disabled(disabled_user.id, True)
    disabled = await sign_in(client, "bob", PASSWORD)
    for response in (wrong, unknown, disabled):
        assert response.status_code == 401
        assert "Invalid username or password." in response.text
        assert COOKIE + "=" not in response.headers.get("set-cookie", "")

    # The page differs only in the echoed username and the fresh token.
    def strip(text: str) -> str:
        return TOKEN_RE.sub("", text).replace("nobody-here", "alice").replace("bob", "alice")

    assert strip(wrong.text) == strip(unknown.text) == strip(disabled.text)
    assert "not the password" not in wrong.text


async def test_P02_throttled_login_shows_the_wait_message(app: App) -> None:
    client = app.browser()
    last = None
    for _ in range(25):
        last = await sign_in(client, "alice", "wrong password!")
        if last.status_code == 429:
            break
    assert last is not None and last.status_code == 429
    assert "Too many sign-in attempts" in last.text
    assert int(last.headers["retry-after"]) >= 1
    # The correct password during the lockout gets the same answer (nothing is revealed).
    locked = await sign_in(client, "alice", PASSWORD)
    assert locked.status_code == 429
    assert session_cookie(client) is None


async def test_C03_login_needs_the_token_of_this_browser(app: App) -> None:
    client, other = app.browser(), app.browser()
    form = {"username": "alice", "password": PASSWORD}
    missing = await client.post("/login", data=form, headers=SAME_ORIGIN)
    assert missing.status_code == 403
    # A token issued to another browser (another pre-session cookie) is refused.
    foreign = csrf_token(await other.get("/login"))
    await client.get("/login")
    stolen = await client.post("/login", data={**form, "csrf_token": foreign}, headers=SAME_ORIGIN)
    assert stolen.status_code == 403
    assert session_cookie(client) is None
    assert "expired or was sent from another site" in stolen.text


LAN = "http://192.168.1.20:8000"


async def lan_sign_in(app: App, base: str) -> httpx.Response:
    """A browser at ``base`` signs in. Like a real one, httpx keeps a Secure cookie but
    never sends it over plain HTTP, so the pre-session cookie does not come back."""
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app.app), base_url=base, headers=BROWSER
    ) as client:
        token = csrf_token(await client.get("/login"))
        return await client.post(
            "/login",
            data={"csrf_token": token, "username": "alice", "password": PASSWORD},
            headers={"origin": base, "sec-fetch-site": "same-origin"},
        )


async def test_login_over_plain_http_on_a_lan_address_says_why_it_failed(
    make_app: AppFactory,
) -> None:
    app = await make_app(base_url=LAN)
    response = await lan_sign_in(app, LAN)
    assert response.status_code == 403
    text = html.unescape(response.text)
    assert "expired or was sent from another site" not in text
    assert "plain HTTP" in text and "192.168.1.20" in text
    assert "https://" in text and "TLS" in text
    assert "SATCHEL_COOKIE_SECURE=false" in text and "trusted network" in text
    assert COOKIE + "=" not in response.headers.get("set-cookie", "")


@pytest.mark.parametrize(
    "base", ["http://127.0.0.1:8000", "http://localhost:8000", "http://[::1]:8000", BASE]
)
async def test_a_lost_form_cookie_elsewhere_keeps_the_usual_message(
    make_app: AppFactory, base: str
) -> None:
    """Over HTTPS, or on loopback (where browsers keep Secure cookies over HTTP), a missing
    pre-session cookie is an expired or forged form, and the page says so."""
    app = await make_app(base_url=base)
    client = app.browser()
    token = csrf_token(await client.get("/login"))
    client.cookies.clear()
    response = await client.post(
        "/login",
        data={"csrf_token": token, "username": "alice", "password": PASSWORD},
        headers={"origin": base, "sec-fetch-site": "same-origin"},
    )
    assert response.status_code == 403
    assert "expired or was sent from another site" in response.text
    assert "plain HTTP" not in response.text


async def test_insecure_cookies_sign_in_over_plain_http_on_a_lan(make_app: AppFactory) -> None:
    app = await make_app(base_url=LAN, cookie_secure=False)
    response = await lan_sign_in(app, LAN)
    assert response.status_code == 303, response.text
    assert response.headers["set-cookie"].startswith("satchel_session=")


async def test_C01_cross_site_login_post_is_refused(app: App) -> None:
    client = app.browser()
    token = csrf_token(await client.get("/login"))
    form = {"username": "alice", "password": PASSWORD, "csrf_token": token}
    for headers in (
        {"origin": "https://evil.example", "sec-fetch-site": "cross-site"},
        {"origin": "https://evil.example"},
        {"sec-fetch-site": "same-site"},
    ):
        response = await client.post("/login", data=form, headers=headers)
        assert response.status_code == 403, headers
    assert session_cookie(client) is None


async def test_bearer_token_does_not_open_the_pages(app: App) -> None:
    api = app.browser()
    token = (
        await api.post(
            "/auth/token",
            data={"grant_type": "password", "username": "alice", "password": PASSWORD},
        )
    ).json()["access_token"]
    client = app.browser()
    response = await client.get("/", headers={"authorization": f"Bearer {token}"})
    assert response.status_code == 303
    assert response.headers["location"] == "/login"


async def test_logout_ends_the_session_and_clears_the_cookie(app: App) -> None:
    client = app.browser()
    await sign_in(client)
    token = session_cookie(client)
    response = await post_form(client, "/logout", "/")
    assert response.status_code == 303
    assert response.headers["location"] == "/login?notice=signed-out"
    assert f"{COOKIE}=; Max-Age=0" in response.headers["set-cookie"]
    # The old cookie is dead even if replayed.
    again = await app.browser().get("/", headers={"cookie": f"{COOKIE}={token}"})
    assert again.status_code == 303
    assert again.headers["location"] == "/login?notice=ended"


# --- hybrid: refreshing page loads through GET /auth/refresh ------------------------------


@pytest.mark.parametrize(
    "value",
    [
        None,
        "",
        "devices",
        "//evil.example/",
        "///evil.example",
        "/\\evil.example",
        "\\/evil.example",
        "https://evil.example/",
        "javascript:alert(1)",
        "/\t/evil.example",
        "/\n/evil.example",
        "/ok path",
        "/d\u00e9j\u00e0",
        "/auth/refresh?next=/x",
        "/auth/refresh/",
        "/" + "a" * 3000,
        ["/devices"],
    ],
)
def test_safe_next_refuses_everything_but_a_same_site_path(value: object) -> None:
    assert safe_next(value) == "/"


@pytest.mark.parametrize("value", ["/", "/devices", "/admin?user=alice&ip=10.", "/a/b;c=d#x"])
def test_safe_next_keeps_a_same_site_path(value: str) -> None:
    assert safe_next(value) == value


async def test_R01_expired_access_cookie_is_refreshed_through_the_refresh_route(
    make_app: AppFactory,
) -> None:
    app = await make_app(strategy="hybrid")
    client = app.browser()
    await sign_in(client)
    old_access, old_refresh = session_cookie(client), refresh_cookie(client)
    assert old_access and old_refresh
    app.clock.advance(400)  # past the 300 s access lifetime and the 30 s leeway

    page = await client.get("/devices", params={"notice": "session-ended"})
    assert page.status_code == 303
    assert page.headers["location"] == "/auth/refresh?next=%2Fdevices%3Fnotice%3Dsession-ended"
    assert "set-cookie" not in page.headers
    rotated = await client.get(page.headers["location"])
    assert rotated.status_code == 303
    assert rotated.headers["location"] == "/devices?notice=session-ended"
    assert rotated.headers["cache-control"] == "no-store"
    names = [c.split("=", 1)[0] for c in rotated.headers.get_list("set-cookie")]
    assert names == [COOKIE, REFRESH_COOKIE]
    assert "Path=/auth/refresh" in rotated.headers.get_list("set-cookie")[1]
    new_access, new_refresh = session_cookie(client), refresh_cookie(client)
    assert new_access not in (None, old_access) and new_refresh not in (None, old_refresh)
    landed = await client.get(rotated.headers["location"])
    assert landed.status_code == 200
    assert "1 active session" in landed.text

    # The old refresh cookie comes back (a stolen copy) after the grace window: the whole
    # family ends, on the thief's side ...
    app.clock.advance(30)
    stolen = await app.browser().get(
        "/auth/refresh",
        params={"next": "/devices"},
        headers={"cookie": f"{REFRESH_COOKIE}={old_refresh}"},
    )
    assert stolen.status_code == 303
    assert stolen.headers["location"] == "/login?notice=ended&next=%2Fdevices"
    cleared = stolen.headers.get_list("set-cookie")
    assert f"{COOKIE}=; Max-Age=0" in cleared[0] and f"{REFRESH_COOKIE}=; Max-Age=0" in cleared[1]
    # ... and on the victim's: the still-fresh access cookie is refused at once and the
    # browser goes to the sign-in page, not through the refresh route again.
    bounced = await client.get("/devices")
    assert bounced.status_code == 303
    assert bounced.headers["location"] == "/login?notice=ended"
    assert session_cookie(client) is None and refresh_cookie(client) is None  # cleared
    # The successor the victim held is dead as well.
    again = await app.browser().get(
        "/auth/refresh",
        params={"next": "/devices"},
        headers={"cookie": f"{REFRESH_COOKIE}={new_refresh}"},
    )
    assert again.headers["location"] == "/login?notice=ended&next=%2Fdevices"
    alice = await app.auth.users.get_by_name("alice")
    assert await app.auth.list_sessions(alice.id) == []


async def test_refresh_route_without_a_refresh_cookie_goes_to_login_and_back(
    make_app: AppFactory,
) -> None:
    app = await make_app(strategy="hybrid")
    client = app.browser()
    first = await client.get("/admin", params={"user": "bob"})
    assert first.headers["location"] == "/auth/refresh?next=%2Fadmin%3Fuser%3Dbob"
    login = await client.get(first.headers["location"])
    assert login.status_code == 303
    assert login.headers["location"] == "/login?next=%2Fadmin%3Fuser%3Dbob"
    # No refresh cookie: nothing is cleared (a cross-site link must not sign anyone out).
    assert "set-cookie" not in login.headers
    # The sign-in page never sends the browser back to the refresh route: no loop.
    form = await client.get(login.headers["location"])
    assert form.status_code == 200
    assert '<input type="hidden" name="next" value="/admin?user=bob">' in form.text
    signed_in = await sign_in_from(client, form, "root")
    assert signed_in.status_code == 303
    assert signed_in.headers["location"] == "/admin?user=bob"
    # A signed-in browser asking for the sign-in page goes on to ``next`` too.
    assert (await client.get("/login?next=/devices")).headers["location"] == "/devices"


async def sign_in_from(
    client: httpx.AsyncClient, form_page: httpx.Response, username: str
) -> httpx.Response:
    """Submit the sign-in form already loaded in ``form_page`` (with its hidden fields)."""
    fields = dict(
        re.findall(r'<input type="hidden" name="([^"]+)" value="([^"]*)">', form_page.text)
    )
    fields = {k: html.unescape(v) for k, v in fields.items()}
    data = {**fields, "username": username, "password": PASSWORD}
    return await client.post("/login", data=data, headers=SAME_ORIGIN)


async def test_refresh_route_refuses_open_redirects(make_app: AppFactory) -> None:
    app = await make_app(strategy="hybrid")
    client = app.browser()
    await sign_in(client)
    app.clock.advance(400)
    for evil in ("//evil.example/", "https://evil.example/", "/\\evil.example", "/\t/evil"):
        response = await client.get("/auth/refresh", params={"next": evil})
        assert response.status_code == 303
        assert response.headers["location"] == "/"
    # Sign-in with a hostile ``next`` lands on the dashboard.
    other = app.browser()
    form = await other.get("/login", params={"next": "//evil.example/"})
    assert 'name="next"' not in form.text
    token = csrf_token(form)
    posted = await other.post(
        "/login",
        data={
            "csrf_token": token,
            "username": "bob",
            "password": PASSWORD,
            "next": "//evil.example",
        },
        headers=SAME_ORIGIN,
    )
    assert posted.headers["location"] == "/"


async def test_refresh_route_leaves_a_valid_access_cookie_alone(make_app: AppFactory) -> None:
    app = await make_app(strategy="hybrid")
    client = app.browser()
    await sign_in(client)
    before = refresh_cookie(client)
    response = await client.get("/auth/refresh", params={"next": "/devices"})
    assert response.status_code == 303
    assert response.headers["location"] == "/devices"
    assert "set-cookie" not in response.headers
    assert refresh_cookie(client) == before


async def test_pages_use_the_refresh_route_only_when_it_can_help(make_app: AppFactory) -> None:
    hybrid = await make_app(strategy="hybrid")
    # Not a page load: API-style requests and form posts go to the sign-in page directly.
    api_like = await hybrid.browser().get("/devices", headers={"accept": "application/json"})
    assert api_like.headers["location"] == "/login"
    # A credential rejected for another reason than expiry (here: garbage) is not refreshed.
    forged = await hybrid.browser().get("/devices", headers={"cookie": f"{COOKIE}=a.b.c"})
    assert forged.headers["location"] == "/login?notice=ended"


async def test_strategies_without_refresh_tokens_never_detour(make_app: AppFactory) -> None:
    session = await make_app(strategy="session")
    client = session.browser()
    assert (await client.get("/devices")).headers["location"] == "/login"
    assert (await client.get("/auth/refresh")).headers["location"] == "/"
    await sign_in(client)
    token = session_cookie(client)
    bounce = await client.get("/auth/refresh", params={"next": "/devices"})
    assert bounce.headers["location"] == "/devices"
    assert "set-cookie" not in bounce.headers
    assert (await client.get("/devices")).status_code == 200
    assert session_cookie(client) == token


async def test_a_refresh_cookie_sent_everywhere_refreshes_any_page_in_place(
    tmp_path: Path,
) -> None:
    """With ``refresh_path="/"`` the browser sends the refresh cookie with every request, so
    the middleware rotates it on the page load itself (the dashboard at ``/`` included)."""
    from satchel.accounts.passwords import PasswordHasher
    from satchel.clock import ManualClock
    from satchel.config.build import ConfiguredAuth, build_auth
    from satchel.config.settings import Settings
    from satchel.server import create_app

    hasher = PasswordHasher.insecure_fast_for_tests()
    settings = Settings(store=f"sqlite:///{tmp_path / 'pages.db'}", strategy="hybrid")
    clock = ManualClock()
    built = await build_auth(settings, clock=clock, hasher=hasher)
    auth = ConfiguredAuth(
        settings=settings,
        stores=built.stores,
        owns_hasher=False,
        strategy=built.strategy,
        transports=[CookieTransport(refresh_path="/")],
        users=built.users,
        csrf=built.csrf,
        keys=built.keys,
        bus=built.bus,
        clock=clock,
    )
    await auth.users.create_user("alice", PASSWORD)
    app = create_app(settings, auth=auth)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url=BASE, headers=BROWSER) as client:
            await sign_in(client)
            old_access = session_cookie(client)
            clock.advance(400)  # the access token has expired
            page = await client.get("/")
            assert page.status_code == 200, page.headers.get("location")
            names = [c.split("=", 1)[0] for c in page.headers.get_list("set-cookie")]
            assert names == [COOKIE, REFRESH_COOKIE]
            assert "Path=/;" in page.headers.get_list("set-cookie")[1]
            # The new access cookie serves the next page; nothing is rotated again.
            devices = await client.get("/devices")
            assert devices.status_code == 200 and "set-cookie" not in devices.headers
            assert session_cookie(client) not in (None, old_access)
    hasher.close()


# --- CSRF on signed-in forms --------------------------------------------------------------


async def test_C02_signed_in_form_without_valid_token_changes_nothing(app: App) -> None:
    client, phone = app.browser(), app.browser(IPHONE)
    await sign_in(client)
    await sign_in(phone)
    token = csrf_token(await client.get("/devices"))
    phone_token = csrf_token(await phone.get("/devices"))
    attempts: list[tuple[dict[str, str], dict[str, str]]] = [
        ({}, SAME_ORIGIN),  # no token
        ({"csrf_token": "x" * 66}, SAME_ORIGIN),  # garbage
        ({"csrf_token": phone_token}, SAME_ORIGIN),  # bound to another session
        ({"csrf_token": token}, {"origin": "https://evil.example"}),  # right token, wrong origin
        ({"csrf_token": token}, {"sec-fetch-site": "same-site"}),  # sibling site
    ]
    for data, headers in attempts:
        response = await client.post("/devices/end-others", data=data, headers=headers)
        assert response.status_code == 403, (data.keys(), headers)
        assert "nothing was changed" in response.text
    user = await app.auth.users.get_by_name("alice")
    assert len(await app.auth.list_sessions(user.id)) == 2
    assert (await phone.get("/")).status_code == 200


# --- devices ------------------------------------------------------------------------------


async def test_devices_lists_sessions_and_ends_another_one(app: App) -> None:
    laptop, phone = app.browser(), app.browser(IPHONE)
    await sign_in(laptop)
    await sign_in(phone)
    page = await laptop.get("/devices")
    assert page.status_code == 200
    assert "2 active sessions" in page.text
    assert "This device" in page.text
    assert "Mobile Safari 17 on iOS 17 (iPhone)" in page.text
    user = await app.auth.users.get_by_name("alice")
    phone_sid = next(r.id for r in await app.auth.list_sessions(user.id) if r.user_agent == IPHONE)
    ended = await post_form(laptop, f"/devices/{phone_sid}/end", "/devices")
    assert ended.status_code == 303
    assert ended.headers["location"] == "/devices?notice=session-ended"
    assert (await laptop.get("/")).status_code == 200
    bounced = await phone.get("/")
    assert bounced.status_code == 303
    assert bounced.headers["location"] == "/login?notice=ended"
    assert f"{COOKIE}=; Max-Age=0" in bounced.headers["set-cookie"]
    landed = await phone.get("/login?notice=ended")
    assert NOTICES["ended"] in landed.text


async def test_devices_cannot_end_someone_elses_session(app: App) -> None:
    alice, bob = app.browser(), app.browser()
    await sign_in(alice)
    await sign_in(bob, "bob")
    bob_user = await app.auth.users.get_by_name("bob")
    bob_sid = (await app.auth.list_sessions(bob_user.id))[0].id
    response = await post_form(alice, f"/devices/{bob_sid}/end", "/devices")
    assert response.headers["location"] == "/devices?notice=session-gone"
    assert (await bob.get("/")).status_code == 200


async def test_end_all_other_sessions_keeps_this_one(app: App) -> None:
    clients = [app.browser() for _ in range(3)]
    for client in clients:
        await sign_in(client)
    response = await post_form(clients[0], "/devices/end-others", "/devices")
    assert response.headers["location"] == "/devices?notice=others-ended"
    assert (await clients[0].get("/")).status_code == 200
    for other in clients[1:]:
        assert (await other.get("/")).status_code == 303


async def test_ending_this_device_signs_out(app: App) -> None:
    client = app.browser()
    await sign_in(client)
    user = await app.auth.users.get_by_name("alice")
    sid = (await app.auth.list_sessions(user.id))[0].id
    response = await post_form(client, f"/devices/{sid}/end", "/devices")
    assert response.headers["location"] == "/login?notice=signed-out"
    assert (await client.get("/")).status_code == 303


# --- change password ----------------------------------------------------------------------


async def test_change_password_ends_other_sessions_and_renews_this_one(app: App) -> None:
    here, elsewhere = app.browser(), app.browser()
    await sign_in(here)
    await sign_in(elsewhere)
    before = session_cookie(here)
    new = "a brand new passphrase"
    wrong = await post_form(
        here, "/password", "/password", {"current": "nope nope", "new": new, "confirm": new}
    )
    assert wrong.status_code == 400
    assert "current password is incorrect" in wrong.text
    mismatch = await post_form(
        here, "/password", "/password", {"current": PASSWORD, "new": new, "confirm": new + "!"}
    )
    assert "confirmation differ" in mismatch.text
    short = await post_form(
        here, "/password", "/password", {"current": PASSWORD, "new": "short", "confirm": "short"}
    )
    assert short.status_code == 400
    assert "at least 8 characters" in short.text

    done = await post_form(
        here, "/password", "/password", {"current": PASSWORD, "new": new, "confirm": new}
    )
    assert done.status_code == 303
    assert done.headers["location"] == "/?notice=password-changed"
    after = session_cookie(here)
    assert after and after != before  # a new session id (fixation)
    assert (await here.get("/")).status_code == 200
    assert (await elsewhere.get("/")).status_code == 303
    assert (await sign_in(app.browser(), "alice", PASSWORD)).status_code == 401
    assert (await sign_in(app.browser(), "alice", new)).status_code == 303


# --- admin --------------------------------------------------------------------------------


async def test_admin_page_needs_the_admin_role(app: App) -> None:
    client = app.browser()
    await sign_in(client)
    page = await client.get("/admin")
    assert page.status_code == 403
    assert "You do not have access" in page.text
    assert ">Admin<" not in (await client.get("/")).text
    # Forms too, even with a valid token of the caller's own session.
    response = await post_form(
        client, "/admin/users", "/", {"username": "mallory", "password": PASSWORD}
    )
    assert response.status_code == 403
    with pytest.raises(Exception, match="No such user"):
        await app.auth.users.get_by_name("mallory")


async def test_admin_creates_users_and_reports_duplicates(app: App) -> None:
    admin = app.browser()
    await sign_in(admin, "root")
    created = await post_form(
        admin,
        "/admin/users",
        "/admin",
        {"username": "carol", "password": "quiet harbour lamp", "roles": "ops, staff"},
    )
    assert created.headers["location"] == "/admin?notice=user-created"
    carol = await app.auth.users.get_by_name("carol")
    assert carol.roles == ["ops", "staff"]
    duplicate = await post_form(
        admin, "/admin/users", "/admin", {"username": "CAROL", "password": "whatever pass"}
    )
    assert duplicate.status_code == 409
    assert 'role="alert"' in duplicate.text
    bad_role = await post_form(
        admin,
        "/admin/users",
        "/admin",
        {"username": "dave", "password": "dave passphrase", "roles": "Bad Role!"},
    )
    assert bad_role.status_code == 400
    assert (await sign_in(app.browser(), "carol", "quiet harbour lamp")).status_code == 303


async def test_admin_force_logout_and_disable_take_effect_at_once(app: App) -> None:
    admin, bob = app.browser(), app.browser()
    await sign_in(admin, "root")
    await sign_in(bob, "bob")
    bob_user = await app.auth.users.get_by_name("bob")
    out = await post_form(admin, f"/admin/users/{bob_user.id}/logout", "/admin")
    assert out.headers["location"] == "/admin?notice=user-logged-out"
    assert (await bob.get("/")).status_code == 303

    await sign_in(bob, "bob")
    disabled = await post_form(admin, f"/admin/users/{bob_user.id}/disable", "/admin")
    assert disabled.headers["location"] == "/admin?notice=user-disabled"
    assert (await bob.get("/")).status_code == 303
    assert (await sign_in(bob, "bob")).status_code == 401
    page = await admin.get("/admin")
    assert "disabled" in page.text
    await post_form(admin, f"/admin/users/{bob_user.id}/enable", "/admin")
    assert (await sign_in(bob, "bob")).status_code == 303


async def test_admin_cannot_lock_themself_out(app: App) -> None:
    admin = app.browser()
    await sign_in(admin, "root")
    root = await app.auth.users.get_by_name("root")
    response = await post_form(admin, f"/admin/users/{root.id}/disable", "/admin")
    assert response.status_code == 400
    assert "your own account" in response.text
    response = await post_form(admin, f"/admin/users/{root.id}/roles", "/admin", {"roles": "ops"})
    assert response.status_code == 400
    assert (await app.auth.users.get(root.id)).roles == ["admin"]


async def test_admin_changes_roles_and_resets_passwords(app: App) -> None:
    admin, alice = app.browser(), app.browser()
    await sign_in(admin, "root")
    await sign_in(alice)
    user = await app.auth.users.get_by_name("alice")
    roles = await post_form(
        admin, f"/admin/users/{user.id}/roles", "/admin", {"roles": "staff ops"}
    )
    assert roles.headers["location"] == "/admin?notice=roles-changed"
    assert (await app.auth.users.get(user.id)).roles == ["ops", "staff"]
    # A role change ends the user's sessions: new privileges come with a new session id.
    assert (await alice.get("/")).status_code == 303
    await sign_in(alice)
    assert "ops" in (await alice.get("/")).text

    reset = await post_form(
        admin, f"/admin/users/{user.id}/password", "/admin", {"password": "reset passphrase"}
    )
    assert reset.headers["location"] == "/admin?notice=password-reset"
    assert (await alice.get("/")).status_code == 303
    assert (await sign_in(app.browser(), "alice", "reset passphrase")).status_code == 303


async def test_admin_session_list_filters_and_ends_sessions(app: App) -> None:
    admin, alice, bob = app.browser(), app.browser(IPHONE), app.browser()
    await sign_in(admin, "root")
    await sign_in(alice)
    await sign_in(bob, "bob")
    everything = await admin.get("/admin")
    assert "Mobile Safari 17 on iOS 17 (iPhone)" in everything.text
    only_bob = await admin.get("/admin", params={"user": "bob"})
    assert only_bob.status_code == 200
    table = only_bob.text.split("Active sessions", 1)[1].split("Signing keys", 1)[0]
    assert ">bob<" in table and ">alice<" not in table
    none = await admin.get("/admin", params={"ip": "203.0.113."})
    assert "No active sessions match the filter" in none.text
    nobody = await admin.get("/admin", params={"user": "\x00bad"})
    assert nobody.status_code == 200

    alice_user = await app.auth.users.get_by_name("alice")
    sid = (await app.auth.list_sessions(alice_user.id))[0].id
    ended = await post_form(admin, f"/admin/sessions/{sid}/end", "/admin")
    assert ended.headers["location"] == "/admin?notice=session-ended"
    assert (await alice.get("/")).status_code == 303


def session_counts(page: httpx.Response) -> dict[str, str]:
    """The users table's "Sessions" column: username -> the text shown."""
    rows = re.findall(
        r'<tr data-user="([^"]+)">.*?<td data-label="Sessions"[^>]*>(.*?)</td>', page.text, re.S
    )
    return {name: re.sub(r"<[^>]+>", "", cell).strip() for name, cell in rows}


async def test_admin_session_counts_do_not_depend_on_the_filter(app: App) -> None:
    admin = app.browser()
    await sign_in(admin, "root")
    for _ in range(2):
        await sign_in(app.browser(IPHONE))
    await sign_in(app.browser(), "bob")
    expected = {"root": "1", "alice": "2", "bob": "1"}
    assert session_counts(await admin.get("/admin")) == expected
    for params in (
        {"user": "bob"},
        {"user": "alice"},
        {"user": "nobody-here"},
        {"ip": "203.0.113."},
        {"user": "alice", "ip": "203.0.113."},
    ):
        page = await admin.get("/admin", params=params)
        assert page.status_code == 200
        assert session_counts(page) == expected, params
    # The filter still narrows the sessions table.
    only_bob = await admin.get("/admin", params={"user": "bob"})
    table = only_bob.text.split('class="sessions stackable"', 1)[1]
    assert ">bob<" in table and ">alice<" not in table


async def test_admin_rotates_keys_and_shows_the_jwks(make_app: AppFactory) -> None:
    app = await make_app(strategy="jwt")
    admin = app.browser()
    await sign_in(admin, "root")
    page = await admin.get("/admin")
    before = app.auth.keys.keyset.active.kid if app.auth.keys else None
    assert before and before in page.text
    assert '"kty": "OKP"' in html.unescape(page.text)
    kids_before = {k.kid for k in await app.auth.keys.list()} if app.auth.keys else set()
    rotated = await post_form(admin, "/admin/keys/rotate", "/admin")
    assert rotated.headers["location"] == "/admin?notice=keys-rotated"
    assert app.auth.keys is not None
    new_kids = {k.kid for k in await app.auth.keys.list()} - kids_before
    assert len(new_kids) == 1
    page = await admin.get(rotated.headers["location"])
    shown = html.unescape(page.text)
    # The notice says when the new key takes over: after the publish delay (120 s).
    assert app.auth.keys.publish_delay == 120
    assert "It starts signing in 2 min" in shown
    assert "after the publish delay of 2 min" in shown
    # The new key is listed and published in the JWKS next to the old one.
    (new_kid,) = new_kids
    assert shown.count(new_kid) >= 2 and shown.count(before) >= 2
    assert ">signing<" in shown and ">pending<" in shown
    # Private key material never reaches the page.
    for stored in await app.auth.keys.list():
        assert stored.material not in page.text
        assert "PRIVATE KEY" not in page.text


async def test_jwt_dashboard_shows_header_and_claims_but_not_the_signature(
    make_app: AppFactory,
) -> None:
    app = await make_app(strategy="jwt")
    client = app.browser()
    await sign_in(client)
    token = session_cookie(client)
    assert token and token.count(".") == 2
    page = await client.get("/")
    assert page.status_code == 200
    assert "What the token says" in page.text
    shown = html.unescape(page.text)
    assert '"alg": "EdDSA"' in shown
    user = await app.auth.users.get_by_name("alice")
    assert f'"sub": "{user.id}"' in shown
    assert token.split(".")[2] not in page.text
    assert token not in page.text


# --- errors and static files --------------------------------------------------------------


async def test_404_is_an_html_page_for_browsers_and_json_for_api_clients(app: App) -> None:
    client = app.browser()
    probe = "/nothing-<script>alert(1)</script>"
    page = await client.get(probe)
    assert page.status_code == 404
    assert page.headers["content-type"].startswith("text/html")
    assert "Page not found" in page.text
    assert "<script>" not in page.text and "alert(1)" not in page.text
    api = await client.get(probe, headers={"accept": "application/json"})
    assert api.status_code == 404
    assert api.json()["error"] == "not_found"
    # The JSON API keeps JSON errors even for a browser.
    assert (
        (await client.get("/auth/nowhere")).headers["content-type"].startswith("application/json")
    )


async def test_error_pages_leak_nothing(app: App) -> None:
    client = app.browser()
    await sign_in(client)
    wrong_method = await client.get("/logout")
    assert wrong_method.status_code == 405
    assert "text/html" in wrong_method.headers["content-type"]
    too_long = await post_form(client, "/devices/" + "x" * 300 + "/end", "/devices")
    assert too_long.status_code == 400
    assert "x" * 50 not in too_long.text
    for response in (wrong_method, too_long):
        assert "Traceback" not in response.text and "satchel/" not in response.text


async def test_unknown_notice_keys_are_not_shown(app: App) -> None:
    client = app.browser()
    page = await client.get("/login", params={"notice": "<b>owned</b>"})
    assert "owned" not in page.text
    page = await client.get("/login", params={"notice": "signed-out"})
    assert NOTICES["signed-out"] in page.text


async def test_static_files_are_a_fixed_list(app: App) -> None:
    client = app.browser()
    css = await client.get("/static/style.css")
    assert css.status_code == 200
    assert css.headers["content-type"].startswith("text/css")
    icon = await client.get("/static/favicon.svg")
    assert icon.headers["content-type"].startswith("image/svg+xml")
    favicon = await client.get("/favicon.ico")
    assert favicon.status_code == 301
    for path in ("/static/../pages.py", "/static/pages.py", "/static/%2e%2e%2fapp.py"):
        assert (await client.get(path)).status_code == 404


# --- helpers ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("agent", "label"),
    [
        (FIREFOX, "Firefox 131 on Ubuntu"),
        (IPHONE, "Mobile Safari 17 on iOS 17 (iPhone)"),
        (None, "Unknown browser"),
        ("", "Unknown browser"),
        ("\x00" * 10_000, "Unknown browser"),
    ],
)
def test_describe_user_agents(agent: str | None, label: str) -> None:
    assert describe(agent).label == label


@pytest.mark.parametrize(
    ("host", "loopback"),
    [
        ("localhost", True),
        ("LOCALHOST.", True),
        ("app.localhost", True),
        ("127.0.0.1", True),
        ("127.8.9.10", True),
        ("[::1]", True),
        ("::1", True),
        ("192.168.1.20", False),
        ("10.0.0.1", False),
        ("0.0.0.0", False),
        ("localhost.example.com", False),
        ("example.com", False),
        ("", False),
    ],
)
def test_is_loopback(host: str, loopback: bool) -> None:
    assert is_loopback(host) is loopback


def test_describe_marks_phones_mobile() -> None:
    assert describe(IPHONE).mobile
    assert not describe(FIREFOX).mobile


def test_decode_jwt_parts_only_accepts_json_objects() -> None:
    assert decode_jwt_parts("eyJhbGciOiJFZERTQSJ9.eyJzdWIiOiJ4In0.c2ln") == (
        {"alg": "EdDSA"},
        {"sub": "x"},
    )
    for bad in (None, "", "a.b", "a.b.c.d", "W10.W10.x", "!!!.???.x"):
        assert decode_jwt_parts(bad) is None


def test_time_wording() -> None:
    assert format_span(45) == "45 s"
    assert format_span(29 * 60 + 5) == "29 min"
    assert format_span(11 * 3600 + 59 * 60) == "11 h 59 min"
    assert format_span(6 * 86_400) == "6 days"
    assert relative(1000.0, 1000.0) == "just now"
    assert relative(1000.0 + 600, 1000.0) == "in 10 min"
    assert relative(1000.0 - 600, 1000.0) == "10 min ago"
