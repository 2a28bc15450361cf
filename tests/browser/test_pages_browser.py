"""The reference server's pages in a real browser: Debian's Chromium driven by Playwright.

Each test talks to a real ``satchel serve`` process on 127.0.0.1 (secure ``__Host-``
cookies work there: Chromium treats loopback as a secure context) and saves screenshots
under test-artifacts/browser/.
"""

from __future__ import annotations

import re
import threading
import time
import uuid
from collections.abc import Iterator
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from .conftest import (
    ADMIN_PASSWORD,
    ALICE_PASSWORD,
    BOB_PASSWORD,
    Server,
    free_port,
    login,
    screenshots_dir,
)

pytestmark = pytest.mark.browser

COOKIE = "__Host-satchel"
REFRESH_COOKIE = "__Secure-satchel-refresh"
IPHONE = (
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 "
    "(KHTML, like Gecko) Version/17.5 Mobile/15E148 Safari/604.1"
)
FIREFOX = "Mozilla/5.0 (X11; Ubuntu; Linux x86_64; rv:131.0) Gecko/20100101 Firefox/131.0"
PASSWORD = "browser passphrase 1"


def fresh_user(server: Server, *roles: str) -> str:
    """A user of its own for one test, so tests sharing a server cannot disturb each other."""
    name = f"user-{uuid.uuid4().hex[:8]}"
    server.add_user(name, PASSWORD, *roles)
    return name


def on_login_page(page: Any, server: Server) -> bool:
    return bool(page.url.startswith(server.url("/login")))


# --- sign in ------------------------------------------------------------------------------


def test_login_through_the_form_shows_the_dashboard(
    server: Server, new_context: Any, shot: Any
) -> None:
    context = new_context()
    page = context.new_page()
    page.goto(server.url("/"))
    assert on_login_page(page, server), "/ must open on the sign-in page"
    shot(page, "login")
    login(page, server, "alice", ALICE_PASSWORD)
    assert page.url == server.url("/")
    assert page.get_by_role("heading", level=1).inner_text() == "Signed in as alice"
    assert page.locator(".who").inner_text() == "alice"
    shot(page, "dashboard")

    # The session cookie is HttpOnly: page scripts cannot see it ...
    visible = page.evaluate("document.cookie")
    assert COOKIE + "=" not in visible
    # ... yet the browser holds it, Secure and __Host- prefixed, over http://127.0.0.1.
    cookies = {c["name"]: c for c in context.cookies()}
    assert cookies[COOKIE]["httpOnly"] is True
    assert cookies[COOKIE]["secure"] is True
    assert cookies[COOKIE]["sameSite"] == "Lax"
    assert cookies[COOKIE]["value"] not in page.content()


@pytest.mark.parametrize("strategy", ["session", "hybrid"])
def test_remember_this_device_decides_whether_the_cookies_outlive_the_browser(
    make_server: Any, new_context: Any, strategy: str
) -> None:
    """Unticked, the credential cookies are browser-session cookies (Playwright reports
    ``expires == -1``): closing the browser signs out. Ticked, they persist."""
    server = make_server(strategy=strategy)
    names = [COOKIE, REFRESH_COOKIE] if strategy == "hybrid" else [COOKIE]
    for remember in (False, True):
        context = new_context()
        page = context.new_page()
        login(page, server, "alice", ALICE_PASSWORD, remember=remember)
        assert page.get_by_role("heading", level=1).inner_text() == "Signed in as alice"
        cookies = {c["name"]: c for c in context.cookies()}
        assert sorted(n for n in cookies if n in (COOKIE, REFRESH_COOKIE)) == sorted(names)
        for name in names:
            expires = cookies[name]["expires"]
            if remember:
                assert expires > time.time() + 60, (name, expires)
            else:
                assert expires == -1, (name, expires)


def test_wrong_password_shows_the_generic_error(
    server: Server, new_context: Any, shot: Any
) -> None:
    page = new_context().new_page()
    login(page, server, "alice", "not the password")
    assert on_login_page(page, server)
    alert = page.get_by_role("alert")
    assert alert.inner_text() == "Invalid username or password."
    shot(page, "wrong-password")
    login(page, server, "no-such-user", "not the password")
    assert page.get_by_role("alert").inner_text() == "Invalid username or password."
    # The username is kept, the password is not.
    assert page.get_by_label("Username").input_value() == "no-such-user"
    assert page.get_by_label("Password").input_value() == ""


def test_login_focus_order_and_labels(server: Server, new_context: Any) -> None:
    page = new_context().new_page()
    page.goto(server.url("/login"))
    focused = [page.evaluate("document.activeElement.id")]
    for _ in range(3):
        page.keyboard.press("Tab")
        focused.append(
            page.evaluate("document.activeElement.id || document.activeElement.textContent.trim()")
        )
    assert focused == ["username", "password", "remember", "Sign in"]
    # Keyboard-only sign-in works (Enter submits the form).
    page.get_by_label("Username").fill("bob")
    page.get_by_label("Password").fill(BOB_PASSWORD)
    with page.expect_navigation():
        page.keyboard.press("Enter")
    assert page.get_by_role("heading", level=1).inner_text() == "Signed in as bob"


def test_throttling_message_after_too_many_attempts(
    make_server: Any, new_context: Any, shot: Any
) -> None:
    # A low per-address limit keeps the test short; the rule is the same as the default's.
    server = make_server(login_ip_limit=3, login_ip_window=60)
    page = new_context().new_page()
    messages = []
    for _ in range(4):
        login(page, server, "alice", "wrong password!")
        messages.append(page.get_by_role("alert").inner_text())
    assert messages[:3] == ["Invalid username or password."] * 3
    assert messages[3].startswith("Too many sign-in attempts. Wait "), messages
    shot(page, "throttled")
    # During the lockout the right password gets the same answer.
    login(page, server, "alice", ALICE_PASSWORD)
    assert page.get_by_role("alert").inner_text().startswith("Too many sign-in attempts.")
    assert not any(c["name"] == COOKIE for c in page.context.cookies())


# --- revocation ---------------------------------------------------------------------------


def test_ending_the_other_session_from_my_devices(
    server: Server, new_context: Any, shot: Any
) -> None:
    name = fresh_user(server)
    a = new_context().new_page()
    b = new_context(user_agent=IPHONE, viewport={"width": 390, "height": 844}).new_page()
    login(a, server, name, PASSWORD)
    login(b, server, name, PASSWORD)
    a.goto(server.url("/devices"))
    assert a.get_by_role("heading", name="2 active sessions").is_visible()
    assert a.get_by_text("This device").is_visible()
    shot(a, "devices-before")
    with a.expect_navigation():
        a.get_by_role("button", name=re.compile(r"^End session: Mobile Safari 17 on iOS")).click()
    assert a.get_by_role("status").inner_text() == "The session was ended."
    assert a.get_by_role("heading", name="1 active session").is_visible()
    shot(a, "devices-after")

    b.reload()
    assert on_login_page(b, server)
    assert b.get_by_role("status").inner_text() == "Your session has ended. Please sign in again."
    shot(b, "ended-elsewhere")
    a.goto(server.url("/devices"))
    assert a.url == server.url("/devices")  # still signed in


def test_admin_force_logout_takes_effect_on_the_next_request(
    server: Server, new_context: Any, shot: Any
) -> None:
    name = fresh_user(server)
    admin = new_context().new_page()
    user = new_context().new_page()
    login(admin, server, "admin", ADMIN_PASSWORD)
    login(user, server, name, PASSWORD)
    admin.goto(server.url("/admin"))
    with admin.expect_navigation():
        admin.get_by_role("button", name=f"Force logout {name}").click()
    assert admin.get_by_role("status").inner_text() == "Every session of the user was ended."
    shot(admin, "admin-after-force-logout")
    user.reload()
    assert on_login_page(user, server)
    admin.goto(server.url("/admin"))
    assert admin.url == server.url("/admin")


def assert_fits(page: Any, width: int, what: str) -> None:
    """No sideways scrolling, and every visible button, link-button and disclosure of the
    page lies inside the viewport (not in a table that has to be scrolled to reach it)."""
    scroll_width = page.evaluate("document.documentElement.scrollWidth")
    assert scroll_width <= width, f"{what}: the page is {scroll_width}px wide"
    controls = page.locator("main button, main a.btn, main summary, main input")
    seen = 0
    for i in range(controls.count()):
        control = controls.nth(i)
        if not control.is_visible():
            continue  # inside a closed <details>, or a hidden input
        box = control.bounding_box()
        assert box is not None
        label = control.get_attribute("aria-label") or control.inner_text()
        assert box["x"] >= 0 and box["x"] + box["width"] <= width, (what, label, box)
        seen += 1
    assert seen, f"{what}: no controls found"


def test_admin_page_fits_a_phone(server: Server, new_context: Any, shot: Any) -> None:
    """At 390 px the admin page does not scroll sideways and every action is on screen,
    with and without a sessions filter."""
    phone = new_context(viewport={"width": 390, "height": 844}, user_agent=IPHONE)
    page = phone.new_page()
    login(page, server, "admin", ADMIN_PASSWORD)
    login(new_context().new_page(), server, "alice", ALICE_PASSWORD)
    for query in ("", "?user=alice", "?ip=127."):
        page.goto(server.url("/admin" + query))
        assert_fits(page, 390, f"/admin{query}")
    page.goto(server.url("/admin"))
    page.locator("details.manage").first.locator("summary").click()
    assert_fits(page, 390, "/admin, roles and password open")
    shot(page, "admin-phone")
    force = page.get_by_role("button", name="Force logout alice")
    force.scroll_into_view_if_needed()
    box = force.bounding_box()
    assert box is not None and box["x"] + box["width"] <= 390


def test_one_session_per_user_logs_the_first_browser_out(
    make_server: Any, new_context: Any, shot: Any
) -> None:
    server = make_server(max_sessions_per_user=1)
    a = new_context().new_page()
    b = new_context().new_page()
    login(a, server, "alice", ALICE_PASSWORD)
    assert a.url == server.url("/")
    login(b, server, "alice", ALICE_PASSWORD)
    assert b.url == server.url("/")
    a.goto(server.url("/devices"))
    assert on_login_page(a, server)
    shot(a, "evicted")
    b.goto(server.url("/devices"))
    assert b.get_by_role("heading", name="1 active session").is_visible()


# --- hybrid strategy: refresh through the refresh route ------------------------------------


def redirect_chain(response: Any) -> list[str]:
    """Paths (with query) the navigation went through, first to last."""
    chain = []
    request = response.request
    while request is not None:
        chain.append(request.url)
        request = request.redirected_from
    return [url.split("/", 3)[3] if url.count("/") >= 3 else url for url in reversed(chain)]


def test_R01_hybrid_page_loads_refresh_through_the_refresh_cookie_and_reuse_ends_all(
    make_server: Any, new_context: Any, shot: Any
) -> None:
    # Grace 0: the replay below must count as reuse however quickly it comes.
    server = make_server(strategy="hybrid", access_ttl=10, refresh_grace=0)
    context = new_context()
    page = context.new_page()
    login(page, server, "alice", ALICE_PASSWORD)
    assert page.get_by_role("heading", level=1).inner_text() == "Signed in as alice"
    cookies = {c["name"]: c for c in context.cookies()}
    refresh = cookies[REFRESH_COOKIE]
    assert refresh["path"] == "/auth/refresh" and refresh["httpOnly"] and refresh["secure"]
    assert cookies[COOKIE]["path"] == "/"
    old_access, old_refresh = cookies[COOKIE]["value"], refresh["value"]

    # The access cookie is gone (what its 10 s Max-Age does too); only the refresh cookie,
    # which the browser sends to /auth/refresh alone, is left.
    context.clear_cookies(name=COOKIE)
    response = page.goto(server.url("/devices"))
    assert response is not None and response.status == 200
    assert page.url == server.url("/devices")
    assert redirect_chain(response) == ["devices", "auth/refresh?next=%2Fdevices", "devices"]
    assert page.get_by_role("heading", name="1 active session").is_visible()
    shot(page, "refreshed")
    rotated = {c["name"]: c["value"] for c in context.cookies()}
    assert rotated[COOKIE] not in ("", old_access)
    assert rotated[REFRESH_COOKIE] not in ("", old_refresh)

    # A copy of the old refresh cookie comes back in another browser: reuse. The whole
    # session ends, and that browser is sent to the sign-in page with its cookies cleared.
    thief = new_context()
    thief.add_cookies(
        [
            {
                "name": REFRESH_COOKIE,
                "value": old_refresh,
                "domain": "127.0.0.1",
                "path": "/auth/refresh",
                "secure": True,
                "httpOnly": True,
                "sameSite": "Lax",
            }
        ]
    )
    stolen = thief.new_page()
    response = stolen.goto(server.url("/devices"))
    assert response is not None
    assert redirect_chain(response) == [
        "devices",
        "auth/refresh?next=%2Fdevices",
        "login?notice=ended&next=%2Fdevices",
    ]
    assert stolen.get_by_role("status").inner_text() == (
        "Your session has ended. Please sign in again."
    )
    assert not any(c["name"] in (COOKIE, REFRESH_COOKIE) for c in thief.cookies())
    shot(stolen, "reuse-detected")

    # The rightful browser is signed out too: its fresh access cookie is refused at once
    # and it lands on the sign-in page (no detour through the refresh route, no loop).
    response = page.goto(server.url("/devices"))
    assert response is not None and on_login_page(page, server)
    assert len(redirect_chain(response)) <= 3
    assert page.get_by_role("status").inner_text() == (
        "Your session has ended. Please sign in again."
    )
    # Signing in again returns to the page that was asked for.
    response = page.goto(server.url("/devices"))
    assert response is not None and on_login_page(page, server)
    assert "next=%2Fdevices" in page.url
    page.get_by_label("Username").fill("alice")
    page.get_by_label("Password").fill(ALICE_PASSWORD)
    with page.expect_navigation():
        page.get_by_role("button", name="Sign in", exact=True).click()
    assert page.url == server.url("/devices")
    assert page.get_by_role("heading", name="1 active session").is_visible()


def test_hybrid_dashboard_describes_the_cookies_the_browser_holds(
    make_server: Any, new_context: Any, shot: Any
) -> None:
    server = make_server(strategy="hybrid")
    context = new_context()
    page = context.new_page()
    before = time.time()
    login(page, server, "alice", ALICE_PASSWORD, remember=True)
    after = time.time()
    jar = {c["name"]: c for c in context.cookies()}
    ages = {}
    for name in (COOKIE, REFRESH_COOKIE):
        row = page.locator(f'tr[data-cookie="{name}"]')
        assert row.is_visible(), name
        chips = row.locator(".chip").all_inner_texts()
        ages[name] = int(next(c for c in chips if c.startswith("Max-Age=")).split("=")[1])
        # What the browser really keeps: it ends the Max-Age shown after the sign-in.
        assert before - 1 <= jar[name]["expires"] - ages[name] <= after + 1, (name, chips)
        assert f"Path={jar[name]['path']}" in chips
        assert ("HttpOnly" in chips) is jar[name]["httpOnly"] is True
        assert ("Secure" in chips) is jar[name]["secure"] is True
    assert ages[COOKIE] in (299, 300)  # the 5-minute access token, not the session's 12 h
    assert 30 * 86_400 - 2 <= ages[REFRESH_COOKIE] <= 30 * 86_400
    refresh_row = page.locator(f'tr[data-cookie="{REFRESH_COOKIE}"]').inner_text()
    assert "An opaque refresh token" in refresh_row
    assert "not sent to this page (Path=/auth/refresh)" in refresh_row
    text = page.locator("main").inner_text()
    assert "A signed JWT (access token)" in text
    assert "Max-Age=43200" not in text and "opaque token, id.secret" not in text
    assert page.get_by_role("heading", name="What the token says").is_visible()
    assert jar[COOKIE]["value"].rsplit(".", 1)[1] not in page.content()
    assert jar[REFRESH_COOKIE]["value"] not in page.content()
    path = shot(page, "hybrid-dashboard")
    assert path.stat().st_size > 10_000
    overflow = page.evaluate(
        "document.documentElement.scrollWidth - document.documentElement.clientWidth"
    )
    assert overflow <= 0


def test_hybrid_refresh_route_is_no_open_redirect(make_server: Any, new_context: Any) -> None:
    server = make_server(strategy="hybrid", access_ttl=10)
    context = new_context()
    page = context.new_page()
    login(page, server, "bob", BOB_PASSWORD)
    context.clear_cookies(name=COOKIE)
    for evil in ("//localhost:9/", "/\\localhost:9/", "http://localhost:9/", "/%09/localhost:9"):
        page.goto(server.url("/auth/refresh?next=") + evil)
        assert page.url == server.url("/"), evil
        assert page.get_by_role("heading", level=1).inner_text() == "Signed in as bob"


# --- cross-site requests ------------------------------------------------------------------


@pytest.fixture
def attacker(tmp_path: Path) -> Iterator[Any]:
    """``attacker(html) -> port``: serves ``html`` as /index.html from another origin."""
    servers: list[ThreadingHTTPServer] = []

    def serve(document: str) -> int:
        root = tmp_path / f"site{len(servers)}"
        root.mkdir()
        (root / "index.html").write_text(document)

        class Handler(SimpleHTTPRequestHandler):
            def __init__(self, *args: Any, **kwargs: Any) -> None:
                super().__init__(*args, directory=str(root), **kwargs)

            def log_message(self, format: str, *args: Any) -> None:
                return None

        port = free_port()
        httpd = ThreadingHTTPServer(("127.0.0.1", port), Handler)
        threading.Thread(target=httpd.serve_forever, daemon=True).start()
        servers.append(httpd)
        return port

    yield serve
    for httpd in servers:
        httpd.shutdown()
        httpd.server_close()


def forged(action: str, fields: dict[str, str]) -> str:
    inputs = "".join(f'<input type="hidden" name="{k}" value="{v}">' for k, v in fields.items())
    return (
        f'<!doctype html><title>Win a prize</title><form id="f" method="post" action="{action}">'
        f"{inputs}</form><script>document.getElementById('f').submit()</script>"
    )


def test_cross_site_form_posts_are_refused(
    server: Server, new_context: Any, attacker: Any, shot: Any
) -> None:
    name = fresh_user(server)
    context = new_context()
    admin = context.new_page()
    login(admin, server, "admin", ADMIN_PASSWORD)
    victim = new_context().new_page()
    login(victim, server, name, PASSWORD)
    other = new_context().new_page()
    login(other, server, name, PASSWORD)

    # Same site, other port: the SameSite=Lax cookie IS attached, so only the CSRF check
    # stands between the forged form and the admin action.
    mallory = f"mallory-{uuid.uuid4().hex[:6]}"
    port = attacker(forged(server.url("/admin/users"), {"username": mallory, "password": "x" * 12}))
    evil = context.new_page()
    with evil.expect_navigation(url=server.url("/admin/users")) as navigation:
        evil.goto(f"http://127.0.0.1:{port}/index.html")
    assert navigation.value.status == 403
    assert "nothing was changed" in evil.content()
    shot(evil, "csrf-same-site-refused")

    # Cross site (localhost is another site than 127.0.0.1): the Lax cookie stays home, so
    # the forged post arrives anonymous and is sent to the sign-in page, which (a top-level
    # GET, cookie attached again) forwards the still signed-in victim to the dashboard.
    port = attacker(forged(server.url("/devices/end-others"), {}))
    evil_victim = victim.context.new_page()
    with evil_victim.expect_navigation(url=server.url("/")):
        evil_victim.goto(f"http://localhost:{port}/index.html")
    assert evil_victim.get_by_role("heading", level=1).inner_text() == f"Signed in as {name}"

    # Login CSRF: signing the victim into the attacker's account is refused too.
    port = attacker(forged(server.url("/login"), {"username": "bob", "password": BOB_PASSWORD}))
    fresh = new_context().new_page()
    with fresh.expect_navigation(url=server.url("/login")) as navigation:
        fresh.goto(f"http://localhost:{port}/index.html")
    assert navigation.value.status == 403
    assert not any(c["name"] == COOKIE for c in fresh.context.cookies())

    # Nothing happened: no user was created, the victim's other session still works.
    assert mallory not in server.cli("users", "list")
    other.reload()
    assert other.url == server.url("/")


# --- the page tour (and the README screenshots) -------------------------------------------


def test_page_tour_screenshots(make_server: Any, new_context: Any, shot: Any) -> None:
    """Every page, filled with a little realistic data; also writes docs/screenshots/ when
    ``SATCHEL_SCREENSHOTS`` is set."""
    server = make_server()
    target = screenshots_dir()

    def capture(page: Any, name: str) -> None:
        path = shot(page, name)
        overflow = page.evaluate(
            "document.documentElement.scrollWidth - document.documentElement.clientWidth"
        )
        assert overflow <= 0, f"{name}: the page scrolls sideways by {overflow}px"
        if target is not None:
            (target / f"{name}.png").write_bytes(path.read_bytes())

    # A few other devices so the lists have something to show.
    phone = new_context(
        user_agent=IPHONE, viewport={"width": 390, "height": 844}, device_scale_factor=2
    ).new_page()
    login(phone, server, "alice", ALICE_PASSWORD, remember=True)
    login(new_context(user_agent=FIREFOX).new_page(), server, "bob", BOB_PASSWORD)
    login(new_context(user_agent=FIREFOX).new_page(), server, "admin", ADMIN_PASSWORD)

    page = new_context().new_page()
    page.goto(server.url("/"))
    assert on_login_page(page, server)
    capture(page, "login")
    login(page, server, "admin", ADMIN_PASSWORD, remember=True)
    capture(page, "dashboard")
    page.goto(server.url("/devices"))
    assert page.get_by_role("heading", name="2 active sessions").is_visible()
    capture(page, "devices")
    page.goto(server.url("/admin"))
    page.locator("details.manage").nth(1).locator("summary").click()
    capture(page, "admin")
    page.goto(server.url("/password"))
    capture(page, "password")
    response = page.goto(server.url("/no/such/page"))
    assert response is not None and response.status == 404
    capture(page, "404")
    phone.goto(server.url("/devices"))
    capture(phone, "devices-mobile")
