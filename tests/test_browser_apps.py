"""Offline docs, HEAD and CORS, over HTTP to a real ``satchel serve`` (and in process where
the CSRF rules need a cookie session): the API docs load nothing from the internet,
``HEAD`` answers wherever ``GET`` does, and a single-page app on a listed origin (only
there) may call the server with credentials."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from apps import Apps
from procs import SatchelServer, satchel_cli
from satchel.config.settings import Settings
from satchel.errors import ConfigurationError

PASSWORD = "correct horse battery"
SPA = "https://app.example.test"
OTHER = "https://evil.example.test"


def start(tmp: Path, name: str, **env: str) -> SatchelServer:
    settings = {"SATCHEL_STORE": f"sqlite:///{tmp / f'{name}.db'}", **env}
    added = satchel_cli(["users", "add", "alice", "--password-stdin"], settings, PASSWORD + "\n")
    assert added.returncode == 0, added.stderr
    server = SatchelServer(settings, name).start()
    try:
        server.wait_ready()
    except BaseException:
        server.stop()
        raise
    return server


@pytest.fixture(scope="module")
def servers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, SatchelServer]]:
    tmp = tmp_path_factory.mktemp("browser-apps")
    started: dict[str, SatchelServer] = {}
    try:
        started["plain"] = start(tmp, "plain")
        started["cors"] = start(tmp, "cors", SATCHEL_CORS_ORIGINS=f"{SPA}, http://localhost:5173")
        yield started
    finally:
        for server in started.values():
            server.stop()


# --- the API docs work offline ------------------------------------------------------------------


@pytest.mark.slow
def test_docs_page_loads_only_local_assets(servers: dict[str, SatchelServer]) -> None:
    base = servers["plain"].url
    html = httpx.get(base + "/docs", timeout=10)
    assert html.status_code == 200
    assert html.headers["content-type"].startswith("text/html")
    # Nothing from a CDN or Google Fonts: every URL the page names is on this server.
    assert not re.search(r"(?:src|href)=[\"']?(?:https?:)?//", html.text), html.text
    assets = re.findall(r"(?:src|href)=\"([^\"]+)\"", html.text)
    assert any(a.endswith(".js") for a in assets), assets
    for asset in assets:
        response = httpx.get(base + asset, timeout=10)
        assert response.status_code == 200, asset
        assert len(response.content) > 100, asset
    assert "/openapi.json" in html.text
    assert httpx.get(base + "/openapi.json", timeout=10).status_code == 200
    # ReDoc is not served: even from local files it fetches its logo from a CDN.
    assert httpx.get(base + "/redoc", timeout=10).status_code == 404


@pytest.mark.slow
def test_swagger_assets_have_their_content_types(servers: dict[str, SatchelServer]) -> None:
    base = servers["plain"].url
    js = httpx.get(f"{base}/docs/assets/swagger-ui-bundle.js", timeout=10)
    css = httpx.get(f"{base}/docs/assets/swagger-ui.css", timeout=10)
    assert "javascript" in js.headers["content-type"]
    assert css.headers["content-type"].startswith("text/css")
    assert b"SwaggerUIBundle" in js.content


# --- HEAD wherever GET -----------------------------------------------------------------------


@pytest.mark.slow
@pytest.mark.parametrize(
    "path", ["/", "/login", "/healthz", "/docs", "/openapi.json", "/.well-known/jwks.json"]
)
def test_head_answers_like_get_without_a_body(servers: dict[str, SatchelServer], path: str) -> None:
    base = servers["plain"].url
    get = httpx.get(base + path, timeout=10)
    head = httpx.head(base + path, timeout=10)
    assert head.status_code == get.status_code != 405
    assert head.content == b""
    assert head.headers.get("content-type") == get.headers.get("content-type")
    assert head.headers.get("content-length") == get.headers.get("content-length")
    assert head.headers.get("location") == get.headers.get("location")


@pytest.mark.slow
def test_head_where_there_is_no_get_is_still_405(servers: dict[str, SatchelServer]) -> None:
    head = httpx.head(f"{servers['plain'].url}/auth/token", timeout=10)
    assert head.status_code == 405
    assert head.headers["allow"] == "POST"
    assert head.content == b""


# --- CORS: an exact allow-list, with credentials ------------------------------------------------


def preflight(base: str, origin: str, method: str = "POST") -> httpx.Response:
    return httpx.options(
        f"{base}/auth/me",
        headers={
            "origin": origin,
            "access-control-request-method": method,
            "access-control-request-headers": "authorization, content-type",
        },
        timeout=10,
    )


@pytest.mark.slow
def test_no_cors_unless_configured(servers: dict[str, SatchelServer]) -> None:
    base = servers["plain"].url
    answer = preflight(base, SPA)
    assert answer.status_code == 405  # no preflight answered: browsers refuse the call
    simple = httpx.get(f"{base}/healthz", headers={"origin": SPA}, timeout=10)
    assert not any(name.startswith("access-control-") for name in simple.headers)


@pytest.mark.slow
def test_a_listed_origin_gets_its_preflight_answered(servers: dict[str, SatchelServer]) -> None:
    answer = preflight(servers["cors"].url, SPA)
    assert answer.status_code == 204
    assert answer.headers["access-control-allow-origin"] == SPA
    assert answer.headers["access-control-allow-credentials"] == "true"
    assert "POST" in answer.headers["access-control-allow-methods"]
    allowed = answer.headers["access-control-allow-headers"].lower()
    assert "authorization" in allowed and "content-type" in allowed
    assert int(answer.headers["access-control-max-age"]) > 0
    assert "Origin" in answer.headers["vary"]
    # The second listed origin, spelled as browsers send it.
    other = preflight(servers["cors"].url, "http://localhost:5173")
    assert other.headers["access-control-allow-origin"] == "http://localhost:5173"


@pytest.mark.slow
@pytest.mark.parametrize(
    "origin",
    [
        OTHER,
        "null",
        "https://app.example.test.evil.example",
        "http://app.example.test",  # another scheme
        "https://app.example.test:8443",  # another port
        "https://sub.app.example.test",
    ],
)
def test_an_unlisted_origin_is_never_reflected(
    servers: dict[str, SatchelServer], origin: str
) -> None:
    base = servers["cors"].url
    answer = preflight(base, origin)
    assert answer.status_code == 403
    assert answer.json()["error"] == "cors_origin_denied"
    assert "access-control-allow-origin" not in answer.headers
    simple = httpx.get(f"{base}/healthz", headers={"origin": origin}, timeout=10)
    assert simple.status_code == 200
    assert "access-control-allow-origin" not in simple.headers
    assert "Origin" in simple.headers["vary"]


@pytest.mark.slow
def test_a_listed_origin_reads_answers_with_credentials(
    servers: dict[str, SatchelServer],
) -> None:
    base = servers["cors"].url
    token = httpx.post(
        f"{base}/auth/token",
        data={"grant_type": "password", "username": "alice", "password": PASSWORD},
        headers={"origin": SPA},
        timeout=10,
    )
    assert token.status_code == 200
    assert token.headers["access-control-allow-origin"] == SPA
    assert token.headers["access-control-allow-credentials"] == "true"
    me = httpx.get(
        f"{base}/auth/me",
        headers={"origin": SPA, "authorization": f"Bearer {token.json()['access_token']}"},
        timeout=10,
    )
    assert me.status_code == 200 and me.headers["access-control-allow-origin"] == SPA
    # Errors too, so the app can read why (and Retry-After, WWW-Authenticate).
    anonymous = httpx.get(f"{base}/auth/me", headers={"origin": SPA}, timeout=10)
    assert anonymous.status_code == 401
    assert anonymous.headers["access-control-allow-origin"] == SPA
    exposed = anonymous.headers["access-control-expose-headers"].lower()
    assert "www-authenticate" in exposed and "retry-after" in exposed
    # Never a wildcard, and Vary on every answer, with an Origin or without.
    assert "*" not in anonymous.headers["access-control-allow-origin"]
    assert "Origin" in httpx.get(f"{base}/healthz", timeout=10).headers["vary"]


# --- a listed origin is a trusted origin for CSRF ------------------------------------------------


async def test_cookie_requests_from_a_listed_origin_pass_csrf(make_app: Apps) -> None:
    app = await make_app(users={"alice": []}, password=PASSWORD, cors_origins=SPA)
    # A same-site app on another origin (app.example.test -> the auth server's sibling).
    spa = {"origin": SPA, "sec-fetch-site": "same-site"}
    login = await app.client.post(
        "/auth/login", json={"username": "alice", "password": PASSWORD}, headers=spa
    )
    assert login.status_code == 200, login.text
    assert login.headers["access-control-allow-origin"] == SPA
    ended = await app.client.post("/auth/sessions/revoke-others", headers=spa)
    assert ended.status_code == 200, ended.text
    # A form post from it still needs the CSRF token (rule 3 holds for every origin).
    form = await app.client.post(
        "/auth/logout", content=b"", headers={**spa, "content-type": "text/plain"}
    )
    assert form.status_code == 403 and form.json()["error"] == "csrf_failed"
    # Any other origin is refused as before.
    evil = {"origin": OTHER, "sec-fetch-site": "cross-site"}
    forged = await app.client.post("/auth/sessions/revoke-others", headers=evil)
    assert forged.status_code == 403 and forged.json()["error"] == "csrf_failed"
    assert "access-control-allow-origin" not in forged.headers


async def test_without_cors_origins_other_sites_are_refused_by_csrf(make_app: Apps) -> None:
    app = await make_app(users={"alice": []}, password=PASSWORD)
    spa = {"origin": SPA, "sec-fetch-site": "same-site"}
    login = await app.client.post(
        "/auth/login", json={"username": "alice", "password": PASSWORD}, headers=spa
    )
    assert login.status_code == 403 and login.json()["error"] == "csrf_failed"


@pytest.mark.parametrize(
    ("value", "fragment"),
    [
        ("*", "'*' is not allowed"),
        ("null", "'null' is not allowed"),
        ("https://app.example.test/path", "no path"),
        ("app.example.test", "https://host"),
    ],
)
def test_cors_origins_setting_refuses_what_is_not_an_exact_origin(
    value: str, fragment: str
) -> None:
    with pytest.raises(ConfigurationError, match="SATCHEL_CORS_ORIGINS") as refused:
        Settings(cors_origins=value)
    assert fragment in str(refused.value)


def test_cors_origins_setting_reads_a_list(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SATCHEL_CORS_ORIGINS", "https://A.example.test/, http://localhost:5173")
    assert Settings().cors_origins == ["https://a.example.test", "http://localhost:5173"]
    monkeypatch.delenv("SATCHEL_CORS_ORIGINS")
    assert Settings().cors_origins == []
