"""CSRF (C01-C03): the pure checks of transports.csrf and, below, the same rules over HTTP."""

from __future__ import annotations

import pytest

from satchel.errors import ConfigurationError, CSRFError
from satchel.identity import Identity
from satchel.transports.csrf import CSRFProtect, binding_for, needs_check, parse_origin

SECRET = b"k" * 32
OWN = "https://app.example"
BINDING = "s:session-one"


def h(**headers: str) -> list[tuple[bytes, bytes]]:
    return [(k.replace("_", "-").lower().encode(), v.encode()) for k, v in headers.items()]


@pytest.fixture
def csrf() -> CSRFProtect:
    return CSRFProtect(SECRET, trusted_origins=["https://admin.example:8443"])


# --- unit level -------------------------------------------------------------------------------


def test_csrf_token_roundtrip_and_binding(csrf: CSRFProtect) -> None:
    token = csrf.token(BINDING)
    assert csrf.verify_token(token, BINDING)
    assert token != csrf.token(BINDING)  # fresh nonce on every render
    assert not csrf.verify_token(token, "s:session-two")
    assert not csrf.verify_token(token, None)
    other = CSRFProtect(b"z" * 32)
    assert not other.verify_token(token, BINDING)


@pytest.mark.parametrize(
    "mangle",
    [
        lambda t: "",
        lambda t: t.split(".")[0],
        lambda t: t + "=",
        lambda t: t[:-1] + ("A" if t[-1] != "A" else "B"),
        lambda t: t.replace(".", ":"),
        lambda t: t + "." + t,
        lambda t: "x" * 10_000,
    ],
)
def test_C02_mangled_token_rejected(csrf: CSRFProtect, mangle: object) -> None:
    token = csrf.token(BINDING)
    assert callable(mangle)
    assert not csrf.verify_token(mangle(token), BINDING)


def test_C02_noncanonical_base64_token_rejected(csrf: CSRFProtect) -> None:
    token = csrf.token(BINDING)
    nonce, mac = token.split(".")
    # The last char of a 22-char base64url group holds 2 unused bits: flipping them keeps bytes.
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
    twin = alphabet[alphabet.index(nonce[-1]) ^ 1]
    assert not csrf.verify_token(f"{nonce[:-1]}{twin}.{mac}", BINDING)


def test_csrf_config_errors() -> None:
    with pytest.raises(ConfigurationError):
        CSRFProtect(b"short")
    with pytest.raises(ConfigurationError):
        CSRFProtect(SECRET, trusted_origins=["https://x.example/path"])
    with pytest.raises(ConfigurationError):
        CSRFProtect(SECRET, headerless="maybe")  # type: ignore[arg-type]
    assert "k" * 32 not in repr(CSRFProtect(SECRET))


@pytest.mark.parametrize(
    ("origin", "parsed"),
    [
        ("https://app.example", ("https", "app.example", 443)),
        ("HTTPS://APP.example:443", ("https", "app.example", 443)),
        ("http://app.example", ("http", "app.example", 80)),
        ("null", None),
        ("https://app.example/", None),
        ("https://user@app.example", None),
        ("ftp://app.example", None),
        ("https://app.example:99999", None),
        ("https://app.example\u0000", None),
    ],
)
def test_parse_origin(origin: str, parsed: object) -> None:
    assert parse_origin(origin) == parsed


@pytest.mark.parametrize(
    "headers",
    [
        {"sec_fetch_site": "cross-site"},
        {"sec_fetch_site": "same-site"},
        {"sec_fetch_site": "bogus"},
        {"origin": "https://evil.example"},
        {"origin": "null"},
        {"origin": "https://app.example.evil.example"},
        {"origin": "https://app-example"},
        {"origin": "http://app.example"},
        {"origin": "https://app.example:444"},
        {"origin": "https://admin.example"},
        {"sec_fetch_site": "same-origin", "origin": "https://evil.example"},
    ],
)
def test_C01_cross_site_headers_rejected(csrf: CSRFProtect, headers: dict[str, str]) -> None:
    raw = h(content_type="application/json", **headers)
    with pytest.raises(CSRFError):
        csrf.check("POST", raw, own_origin=OWN, binding=BINDING)


@pytest.mark.parametrize(
    "headers",
    [
        {"sec_fetch_site": "same-origin"},
        {"sec_fetch_site": "none"},
        {"origin": OWN},
        {"origin": "https://app.example:443"},
        {"origin": "https://admin.example:8443", "sec_fetch_site": "same-site"},
        {},
    ],
)
def test_json_from_own_or_trusted_origin_allowed(
    csrf: CSRFProtect, headers: dict[str, str]
) -> None:
    if headers.get("sec_fetch_site") == "same-site":
        csrf = CSRFProtect(
            SECRET, trusted_origins=["https://admin.example:8443"], allow_same_site=True
        )
    csrf.check(
        "POST", h(content_type="application/json", **headers), own_origin=OWN, binding=BINDING
    )


def test_safe_methods_never_checked(csrf: CSRFProtect) -> None:
    for method in ("GET", "HEAD", "OPTIONS"):
        csrf.check(method, h(sec_fetch_site="cross-site"), own_origin=OWN, binding=None)


@pytest.mark.parametrize(
    "ctype", ["application/x-www-form-urlencoded", "multipart/form-data; boundary=x", "text/plain"]
)
def test_C02_form_post_needs_token(csrf: CSRFProtect, ctype: str) -> None:
    raw = h(content_type=ctype, sec_fetch_site="same-origin", origin=OWN)
    with pytest.raises(CSRFError):
        csrf.check("POST", raw, own_origin=OWN, binding=BINDING)
    with pytest.raises(CSRFError):
        csrf.check("POST", raw, own_origin=OWN, binding=BINDING, form_token="garbage")
    foreign = csrf.token("s:another-session")
    with pytest.raises(CSRFError):
        csrf.check("POST", raw, own_origin=OWN, binding=BINDING, form_token=foreign)
    csrf.check("POST", raw, own_origin=OWN, binding=BINDING, form_token=csrf.token(BINDING))
    with_header = [*raw, (b"x-csrf-token", csrf.token(BINDING).encode())]
    csrf.check("POST", with_header, own_origin=OWN, binding=BINDING)


def test_C02_wrong_header_token_is_never_ignored(csrf: CSRFProtect) -> None:
    raw = h(content_type="application/json", sec_fetch_site="same-origin", x_csrf_token="nope")
    with pytest.raises(CSRFError):
        csrf.check("DELETE", raw, own_origin=OWN, binding=BINDING)


def test_C02_headerless_policy(csrf: CSRFProtect) -> None:
    # Documented default: JSON/bodyless without either header passes, forms need the token.
    csrf.check("POST", h(content_type="application/json"), own_origin=OWN, binding=BINDING)
    csrf.check("POST", [], own_origin=OWN, binding=BINDING)
    with pytest.raises(CSRFError):
        csrf.check("POST", h(content_type="text/plain"), own_origin=OWN, binding=BINDING)
    strict = CSRFProtect(SECRET, headerless="reject")
    with pytest.raises(CSRFError):
        strict.check("POST", h(content_type="application/json"), own_origin=OWN, binding=BINDING)
    token = strict.token(BINDING)
    strict.check(
        "POST",
        h(content_type="application/json", x_csrf_token=token),
        own_origin=OWN,
        binding=BINDING,
    )


def test_C01_duplicate_origin_headers_rejected(csrf: CSRFProtect) -> None:
    raw = [(b"origin", OWN.encode()), (b"origin", b"https://evil.example")]
    with pytest.raises(CSRFError):
        csrf.check("POST", raw, own_origin=OWN, binding=BINDING)


def test_login_form_presession_binding(csrf: CSRFProtect) -> None:
    token, headers = csrf.login_form([])
    cookie = next(v for k, v in headers if k == "set-cookie")
    assert cookie.startswith("__Host-satchel-csrf=")
    assert "HttpOnly" in cookie and "Secure" in cookie and "Path=/" in cookie
    nonce = cookie.split(";", 1)[0].split("=", 1)[1]
    request = [(b"cookie", f"__Host-satchel-csrf={nonce}".encode())]
    assert csrf.login_binding(request) == f"p:{nonce}"
    assert csrf.verify_token(token, csrf.login_binding(request))
    # The same browser keeps its pre-session cookie (several tabs keep working).
    token2, headers2 = csrf.login_form(request)
    assert not any(k == "set-cookie" for k, _ in headers2)
    assert csrf.verify_token(token2, csrf.login_binding(request))
    # Another browser's cookie does not match.
    assert not csrf.verify_token(token, "p:" + "A" * 43)


def test_binding_for_identity() -> None:
    ident = Identity("u1", "alice", frozenset(), "session", 5.0, 10.0, session_id="abc")
    assert binding_for(ident) == "s:abc"
    stateless = Identity("u1", "alice", frozenset(), "jwt", 5.0, 10.0)
    assert binding_for(stateless) == "u:u1:5"


def test_needs_check_only_for_cookie_or_login() -> None:
    names = [b"__Host-satchel"]
    cookie = [(b"cookie", b"__Host-satchel=abc")]
    assert needs_check("POST", cookie, names)
    assert not needs_check("GET", cookie, names)
    assert not needs_check("POST", [(b"authorization", b"Bearer abc")], names)
    assert needs_check("POST", [], names, login=True)
    # The pre-session cookie alone is not a session cookie.
    assert not needs_check("POST", [(b"cookie", b"__Host-satchel-csrf=abc")], names)
    assert needs_check("POST", [(b"cookie", b"__Host-satchel=a; __Host-satchel=b")], names)


# --- over HTTP ----------------------------------------------------------------------------------

from .conftest import COOKIE, ORIGIN, PASSWORD, Server, assert_clean_error  # noqa: E402

CROSS = [
    {"sec-fetch-site": "cross-site"},
    {"origin": "https://evil.example"},
    {"origin": "null"},
    {"origin": "https://testserver.evil.example"},
    {"origin": "http://testserver"},
]


@pytest.mark.parametrize(
    "headers", CROSS, ids=["fetch-cross", "foreign", "null", "lookalike", "scheme"]
)
async def test_C01_cross_site_unsafe_cookie_request_refused(
    server: Server, headers: dict[str, str]
) -> None:
    await server.login()
    sessions_before = await server.client.get("/auth/me")
    assert sessions_before.status_code == 200
    response = await server.client.post("/auth/logout", headers=headers)
    assert_clean_error(response, 403, "csrf_failed")
    # No state change: the session still works.
    assert (await server.client.get("/auth/me")).status_code == 200


async def test_C02_cookie_form_post_needs_session_token(server: Server) -> None:
    await server.login()
    form = {"origin": ORIGIN, "sec-fetch-site": "same-origin"}
    missing = await server.client.post("/auth/logout", data={"x": "1"}, headers=form)
    assert_clean_error(missing, 403, "csrf_failed")
    unsigned = await server.client.post("/auth/logout", data={"csrf_token": "abc"}, headers=form)
    assert_clean_error(unsigned, 403, "csrf_failed")
    assert (await server.client.get("/auth/me")).status_code == 200
    token = (await server.client.get("/auth/csrf")).json()["csrf_token"]
    # Another session's token is foreign here.
    other = server.fresh_client()
    await server.login("bob", client=other)
    foreign = (await other.get("/auth/csrf")).json()["csrf_token"]
    await other.aclose()
    rejected = await server.client.post("/auth/logout", data={"csrf_token": foreign}, headers=form)
    assert_clean_error(rejected, 403, "csrf_failed")
    ok = await server.client.post("/auth/logout", data={"csrf_token": token}, headers=form)
    assert ok.status_code == 204
    assert_clean_error(await server.client.get("/auth/me"), 401)


async def test_C02_headerless_json_allowed_headerless_form_refused(server: Server) -> None:
    await server.login()
    form = await server.client.post(
        "/auth/sessions/revoke-others" if server.strategy != "jwt" else "/auth/logout",
        content=b"a=b",
        headers={"content-type": "text/plain"},
    )
    assert_clean_error(form, 403, "csrf_failed")
    response = await server.client.post("/auth/logout", json={})
    assert response.status_code == 204


async def test_C03_login_csrf(server: Server) -> None:
    async with server.fresh_client() as browser:
        cross = await browser.post(
            "/auth/login",
            json={"username": "alice", "password": PASSWORD},
            headers={"sec-fetch-site": "cross-site", "origin": "https://evil.example"},
        )
        assert_clean_error(cross, 403, "csrf_failed")
        assert browser.cookies.get(COOKIE) is None
        no_token = await browser.post(
            "/auth/login",
            data={"username": "alice", "password": PASSWORD},
            headers={"origin": ORIGIN},
        )
        assert_clean_error(no_token, 403, "csrf_failed")
        token = (await browser.get("/auth/csrf")).json()["csrf_token"]
        ok = await browser.post(
            "/auth/login",
            data={"username": "alice", "password": PASSWORD, "csrf_token": token},
            headers={"origin": ORIGIN},
        )
        assert ok.status_code == 200, ok.text
    # A token minted for another browser's pre-session cookie does not work here.
    async with server.fresh_client() as attacker, server.fresh_client() as victim:
        stolen = (await attacker.get("/auth/csrf")).json()["csrf_token"]
        await victim.get("/auth/csrf")
        refused = await victim.post(
            "/auth/login",
            data={"username": "alice", "password": PASSWORD, "csrf_token": stolen},
        )
        assert_clean_error(refused, 403, "csrf_failed")


async def test_C03_bearer_requests_exempt(server: Server) -> None:
    token = await server.bearer_token()
    async with server.fresh_client() as api:
        response = await api.post(
            "/auth/logout",
            headers={"authorization": f"Bearer {token}", "sec-fetch-site": "cross-site"},
            content=b"x",
        )
    assert response.status_code == 204
