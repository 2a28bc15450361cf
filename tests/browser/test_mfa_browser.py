"""Second factors in a real browser: Debian's Chromium with the DevTools virtual
authenticator (CTAP2, internal transport, resident keys, user verification), and TOTP codes
from pyotp.

Passkeys need a domain as RP ID, never an IP address, so these servers are reached on
http://localhost:PORT (a secure context for Chromium, like 127.0.0.1) with
``SATCHEL_WEBAUTHN_RP_ID=localhost``.
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from typing import Any

import pyotp
import pytest

from .conftest import ALICE_PASSWORD, Server, start_server

pytestmark = pytest.mark.browser


@pytest.fixture(scope="module")
def local_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """A server reached as http://localhost:PORT, passkeys bound to ``localhost``."""
    srv = start_server(tmp_path_factory.mktemp("mfa"), webauthn_rp_id="localhost")
    srv.base = srv.base.replace("127.0.0.1", "localhost")
    yield srv
    output = srv.stop()
    assert ALICE_PASSWORD not in output


def authenticator(context: Any, page: Any) -> tuple[Any, str]:
    """A virtual platform authenticator attached to ``page``: the CDP session and its id."""
    cdp = context.new_cdp_session(page)
    cdp.send("WebAuthn.enable")
    added = cdp.send(
        "WebAuthn.addVirtualAuthenticator",
        {
            "options": {
                "protocol": "ctap2",
                "transport": "internal",
                "hasResidentKey": True,
                "hasUserVerification": True,
                "isUserVerified": True,
                "automaticPresenceSimulation": True,
            }
        },
    )
    return cdp, added["authenticatorId"]


def password_sign_in(page: Any, server: Server, username: str, password: str) -> None:
    page.goto(server.url("/login"))
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password").fill(password)
    with page.expect_navigation():
        page.get_by_role("button", name="Sign in", exact=True).click()


def sign_out(page: Any) -> None:
    with page.expect_navigation():
        page.get_by_role("button", name="Sign out").click()


def test_passkey_register_sign_in_second_factor_and_removal(
    local_server: Server, new_context: Any, shot: Any
) -> None:
    server = local_server
    server.add_user("pia", ALICE_PASSWORD)
    context = new_context()
    page = context.new_page()
    cdp, auth_id = authenticator(context, page)

    # Register a passkey on the security page.
    password_sign_in(page, server, "pia", ALICE_PASSWORD)
    page.goto(server.url("/security"))
    page.get_by_label("Name", exact=True).fill("Test laptop")
    with page.expect_navigation(url=re.compile(r".*/security\?notice=passkey-added")):
        page.get_by_role("button", name="Add a passkey").click()
    assert page.get_by_text("Test laptop").first.is_visible()
    credentials = cdp.send("WebAuthn.getCredentials", {"authenticatorId": auth_id})["credentials"]
    assert len(credentials) == 1 and credentials[0]["isResidentCredential"] is True
    shot(page, "security-with-passkey")

    # Sign out, then sign in with the passkey and no username.
    sign_out(page)
    page.goto(server.url("/login"))
    with page.expect_navigation(url=server.url("/")):
        page.get_by_role("button", name="Sign in with a passkey").click()
    assert page.get_by_text("pia").first.is_visible()
    page.goto(server.url("/security"))
    assert page.get_by_text("hwk").first.is_visible() or page.get_by_text("swk").first.is_visible()

    # The password now needs the passkey as second factor.
    sign_out(page)
    password_sign_in(page, server, "pia", ALICE_PASSWORD)
    assert page.get_by_role("heading", name="Confirm it is you").is_visible()
    shot(page, "second-step")
    with page.expect_navigation(url=server.url("/")):
        page.get_by_role("button", name="Use a passkey").click()

    # Remove it: signing in with it is refused from then on.
    page.goto(server.url("/security"))
    with page.expect_navigation(url=re.compile(r".*notice=passkey-removed")):
        page.get_by_role("button", name="Remove passkey Test laptop").click()
    sign_out(page)
    page.goto(server.url("/login"))
    page.get_by_role("button", name="Sign in with a passkey").click()
    status = page.locator("#passkey-status")
    status.wait_for(state="visible")
    assert "not registered" in status.inner_text()
    assert page.url.startswith(server.url("/login"))
    # And the password alone signs in again: no factor is left.
    password_sign_in(page, server, "pia", ALICE_PASSWORD)
    assert page.url == server.url("/")


def test_totp_end_to_end_with_recovery_code(
    local_server: Server, new_context: Any, shot: Any
) -> None:
    server = local_server
    server.add_user("tom", ALICE_PASSWORD)
    context = new_context()
    page = context.new_page()
    password_sign_in(page, server, "tom", ALICE_PASSWORD)
    page.goto(server.url("/security"))
    with page.expect_navigation():
        page.get_by_role("button", name="Set up an authenticator app").click()
    assert page.locator("figure.qr svg").is_visible()
    secret = page.locator("#totp-secret").inner_text()
    totp = pyotp.TOTP(secret)
    shot(page, "totp-setup")
    page.get_by_label("Code from the app").fill(totp.now())
    with page.expect_navigation():
        page.get_by_role("button", name="Confirm").click()
    codes = page.locator("#recovery-codes code").all_inner_texts()
    assert len(codes) == 10
    with page.expect_navigation():
        page.get_by_role("link", name="I have saved them").click()

    sign_out(page)
    password_sign_in(page, server, "tom", ALICE_PASSWORD)
    page.get_by_label("Code from your authenticator app").fill("000000")
    with page.expect_navigation():
        page.get_by_role("button", name="Verify").click()
    assert page.get_by_text("That code is not valid.").is_visible()
    # The step just confirmed is used up: wait for the next one.
    page.wait_for_timeout((30 - time.time() % 30) * 1000 + 300)
    page.get_by_label("Code from your authenticator app").fill(totp.now())
    with page.expect_navigation(url=server.url("/")):
        page.get_by_role("button", name="Verify").click()

    sign_out(page)
    password_sign_in(page, server, "tom", ALICE_PASSWORD)
    page.get_by_text("Use a recovery code").click()
    page.get_by_label("Recovery code").fill(codes[0])
    with page.expect_navigation(url=server.url("/")):
        page.get_by_role("button", name="Use recovery code").click()
    sign_out(page)
    password_sign_in(page, server, "tom", ALICE_PASSWORD)
    page.get_by_text("Use a recovery code").click()
    page.get_by_label("Recovery code").fill(codes[0])
    with page.expect_navigation():
        page.get_by_role("button", name="Use recovery code").click()
    assert page.get_by_text("That code is not valid.").is_visible()
