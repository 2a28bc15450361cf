"""The API docs offline and a single-page app on another origin, in Debian's Chromium.

- ``/docs`` renders Swagger UI with every request outside the server refused (offline);
- a page on ``http://localhost:<port>`` (a static server of the test, another origin than the
  server on 127.0.0.1) signs in at ``/auth/token`` and reads ``/auth/me`` through real CORS
  when its origin is listed in ``SATCHEL_CORS_ORIGINS``, and is blocked by the browser when
  it is not.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from .conftest import ALICE_PASSWORD, Server, free_port

pytestmark = pytest.mark.browser


def offline(context: Any, server: Server) -> list[str]:
    """Refuse every request that does not go to ``server``; returns the refused URLs."""
    refused: list[str] = []

    def route(request: Any) -> None:
        if request.request.url.startswith(server.base):
            request.continue_()
        else:
            refused.append(request.request.url)
            request.abort()

    context.route("**/*", route)
    return refused


def test_swagger_ui_renders_offline(make_server: Any, new_context: Any, shot: Any) -> None:
    server = make_server()
    context = new_context()
    refused = offline(context, server)
    page = context.new_page()
    page.goto(server.url("/docs"))
    page.locator(".swagger-ui .info .title").wait_for()
    assert "satchel" in page.locator(".swagger-ui .info .title").inner_text()
    page.get_by_text("/auth/token", exact=True).first.wait_for()
    assert page.locator(".opblock").count() >= 10
    shot(page, "swagger")
    assert refused == []  # it asked for nothing outside the server


def test_swagger_ui_signs_in_with_the_password_flow(
    make_server: Any, new_context: Any, shot: Any
) -> None:
    server = make_server()
    page = new_context().new_page()
    page.goto(server.url("/docs"))
    page.get_by_role("button", name="Authorize").first.click()
    dialog = page.locator(".auth-container").filter(has_text="OAuth2Password")
    dialog.locator("input#oauth_username").fill("alice")
    dialog.locator("input#oauth_password").fill(ALICE_PASSWORD)
    with page.expect_response(lambda r: r.url.endswith("/auth/token")) as answer:
        dialog.get_by_role("button", name="Apply given OAuth2 credentials").click()
    assert answer.value.status == 200
    # Swagger UI holds the token now.
    dialog.get_by_role("button", name="Remove authorization").wait_for()
    shot(page, "authorized")
    dialog.get_by_role("button", name="Close").click()
    # "Try it out" on GET /auth/me sends that token.
    page.locator("#operations-default-me_auth_me_get").click()
    page.get_by_role("button", name="Try it out").click()
    with page.expect_response(lambda r: r.url.endswith("/auth/me")) as me:
        page.get_by_role("button", name="Execute").click()
    assert me.value.status == 200
    assert me.value.json()["username"] == "alice"


SPA_SCRIPT = """
async ([base, password]) => {
  const token = await fetch(base + "/auth/token", {
    method: "POST",
    credentials: "include",
    headers: {"Content-Type": "application/x-www-form-urlencoded"},
    body: new URLSearchParams({grant_type: "password", username: "alice", password}),
  });
  const pair = await token.json();
  const me = await fetch(base + "/auth/me", {
    credentials: "include",
    headers: {"Authorization": "Bearer " + pair.access_token},
  });
  return {status: me.status, body: await me.json()};
}
"""


@pytest.fixture
def spa_origin() -> Iterator[str]:
    """A single-page app's own origin: a static page on ``http://localhost:<port>``, another
    origin (and site) than the satchel server on 127.0.0.1."""

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            body = b"<!doctype html><title>app</title>"
            self.send_response(200)
            self.send_header("content-type", "text/html")
            self.send_header("content-length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:
            return None

    port = free_port()
    httpd = ThreadingHTTPServer(("127.0.0.1", port), Handler)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    try:
        yield f"http://localhost:{port}"
    finally:
        httpd.shutdown()
        httpd.server_close()


def test_a_listed_spa_origin_calls_the_api(
    make_server: Any, new_context: Any, spa_origin: str
) -> None:
    server = make_server(cors_origins=spa_origin)
    page = new_context().new_page()
    page.goto(spa_origin + "/")
    answer = page.evaluate(SPA_SCRIPT, [server.base, ALICE_PASSWORD])
    assert answer["status"] == 200
    assert answer["body"]["username"] == "alice"


def test_an_unlisted_spa_origin_is_blocked_by_the_browser(
    make_server: Any, new_context: Any, spa_origin: str
) -> None:
    server = make_server(cors_origins="https://another-app.example")
    page = new_context().new_page()
    page.goto(spa_origin + "/")
    with pytest.raises(Exception, match="Failed to fetch"):
        page.evaluate(SPA_SCRIPT, [server.base, ALICE_PASSWORD])
