"""The account pages in Debian's Chromium, against a real ``satchel serve`` mailing to a
real SMTP server: sign-up by invitation, address confirmation, password reset that signs
the other browser out, the first-administrator link of a fresh server, and mail scanners
that open links (a GET) without using them up."""

from __future__ import annotations

import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from mailhelpers import Received, ThreadedSMTP

from .conftest import ALICE_PASSWORD, SATCHEL, Server, _clean_env, free_port, login

pytestmark = pytest.mark.browser

IVY_PASSWORD = "saffron canyon ledger 6"
NEW_PASSWORD = "emerald tide whistle 8"


@pytest.fixture
def smtp() -> Iterator[ThreadedSMTP]:
    server = ThreadedSMTP().start()
    yield server
    server.stop()


def mail_settings(smtp: ThreadedSMTP, **extra: str) -> dict[str, str]:
    return {"mail_url": f"smtp://127.0.0.1:{smtp.port}", "mail_retry_delay": "0.1", **extra}


def scanner_get(link: str) -> None:
    """What a mail scanner does: fetch the link (twice), follow redirects, keep nothing."""
    for _ in range(2):
        response = httpx.get(link, follow_redirects=True, timeout=10)
        assert response.status_code == 200


def sign_up_by_api(server: Server, smtp: ThreadedSMTP, name: str, email: str) -> None:
    body = {"username": name, "password": IVY_PASSWORD, "email": email}
    assert httpx.post(server.url("/auth/register"), json=body).status_code == 202
    mail = smtp.catcher.wait_for_sync(email)
    token = mail.token("/verify-email")
    verified = httpx.post(server.url("/auth/email/verify"), json={"token": token})
    assert verified.status_code == 200, verified.text


def test_sign_up_by_invitation_confirm_then_sign_in(
    make_server: Any, smtp: ThreadedSMTP, new_context: Any, shot: Any
) -> None:
    server: Server = make_server(**mail_settings(smtp, signup="invite"))
    server.env["SATCHEL_PUBLIC_URL"] = server.base  # what the command line builds links on
    link = server.cli("invites", "create", "--email", "ivy@example.com", "--role", "staff").strip()
    assert link.startswith(server.url("/register?invite="))
    page = new_context().new_page()
    page.goto(link)
    page.get_by_label("Username").fill("ivy")
    page.get_by_label("E-mail address").fill("ivy@example.com")
    page.get_by_label("Password", exact=True).fill(IVY_PASSWORD)
    page.get_by_label("Repeat the password").fill(IVY_PASSWORD)
    shot(page, "register")
    page.get_by_role("button", name="Create account").click()
    page.get_by_role("heading", name="Check your mail").wait_for()

    mail: Received = smtp.catcher.wait_for_sync("ivy@example.com")
    confirm = mail.link("/verify-email")
    assert confirm.startswith(server.url("/verify-email?token="))
    page.goto(confirm)
    shot(page, "verify")
    page.get_by_role("button", name="Confirm my address").click()
    page.get_by_role("heading", name="Address confirmed").wait_for()

    login(page, server, "ivy", IVY_PASSWORD)
    assert page.url == server.url("/")
    assert page.get_by_text("staff").first.is_visible()
    # The invitation was used up.
    again = new_context().new_page()
    again.goto(link)
    again.get_by_label("Username").fill("ivy2")
    again.get_by_label("E-mail address").fill("ivy@example.com")
    again.get_by_label("Password", exact=True).fill(IVY_PASSWORD)
    again.get_by_label("Repeat the password").fill(IVY_PASSWORD)
    again.get_by_role("button", name="Create account").click()
    assert again.get_by_role("alert").inner_text().startswith("This link or code is invalid")


def test_forgot_password_reset_signs_the_other_browser_out(
    make_server: Any, smtp: ThreadedSMTP, new_context: Any, shot: Any
) -> None:
    server: Server = make_server(**mail_settings(smtp, signup="open"))
    sign_up_by_api(server, smtp, "ivy", "ivy@example.com")
    laptop = new_context().new_page()
    login(laptop, server, "ivy", IVY_PASSWORD)
    assert laptop.url == server.url("/")

    phone = new_context().new_page()
    phone.goto(server.url("/login"))
    phone.get_by_role("link", name="Forgot your password?").click()
    phone.get_by_label("E-mail address").fill("ivy@example.com")
    shot(phone, "forgot")
    phone.get_by_role("button", name="Send reset link").click()
    phone.get_by_role("heading", name="Check your mail").wait_for()

    mail = smtp.catcher.wait_for_sync("ivy@example.com", 2)
    link = mail.link("/reset-password")
    scanner_get(link)  # a scanner opening the link uses nothing up
    phone.goto(link)
    phone.get_by_label("New password", exact=True).fill(NEW_PASSWORD)
    phone.get_by_label("Repeat the new password").fill(NEW_PASSWORD)
    shot(phone, "reset")
    with phone.expect_navigation():
        phone.get_by_role("button", name="Set new password").click()
    assert "/login" in phone.url
    assert "Password changed" in phone.get_by_role("status").inner_text()

    laptop.reload()
    assert "/login" in laptop.url  # the other browser's session ended
    login(phone, server, "ivy", NEW_PASSWORD)
    assert phone.url == server.url("/")
    notice = smtp.catcher.wait_for_sync("ivy@example.com", 3)
    assert "was just reset" in notice.text


def test_sign_in_link_opened_by_a_scanner_still_works(
    make_server: Any, smtp: ThreadedSMTP, new_context: Any, shot: Any
) -> None:
    server: Server = make_server(**mail_settings(smtp, signup="open"))
    sign_up_by_api(server, smtp, "ivy", "ivy@example.com")
    page = new_context().new_page()
    page.goto(server.url("/login"))
    page.get_by_role("link", name="Email me a sign-in link").click()
    page.get_by_label("E-mail address").first.fill("ivy@example.com")
    page.get_by_role("button", name="Mail me a sign-in link").click()
    page.get_by_role("heading", name="Check your mail").wait_for()
    shot(page, "link-sent")
    mail = smtp.catcher.wait_for_sync("ivy@example.com", 2)
    link = mail.link("/sign-in/link")
    scanner_get(link)
    page.goto(link)
    with page.expect_navigation():
        page.get_by_role("button", name="Sign in").click()
    assert page.url == server.url("/")
    assert page.get_by_text("ivy").first.is_visible()

    # The code path, from a second browser.
    other = new_context().new_page()
    other.goto(server.url("/sign-in/link"))
    other.get_by_label("E-mail address").first.fill("ivy@example.com")
    other.get_by_role("button", name="Mail me a sign-in link").click()
    code = smtp.catcher.wait_for_sync("ivy@example.com", 3).code()
    other.get_by_label("6-digit code").fill(code)
    with other.expect_navigation():
        other.get_by_role("button", name="Sign in with the code").click()
    assert other.url == server.url("/")


class _Output:
    """Collects a process's output lines in a thread."""

    def __init__(self, proc: subprocess.Popen[bytes]) -> None:
        self.lines: list[str] = []
        self._thread = threading.Thread(target=self._read, args=(proc,), daemon=True)
        self._thread.start()

    def _read(self, proc: subprocess.Popen[bytes]) -> None:
        assert proc.stdout is not None
        for raw in proc.stdout:
            self.lines.append(raw.decode(errors="replace"))

    def wait_for(self, needle: str, timeout: float = 30) -> str:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for line in self.lines:
                if needle in line:
                    return line.strip()
            time.sleep(0.05)
        raise AssertionError(f"{needle!r} not printed:\n{''.join(self.lines)}")


def test_first_admin_from_a_fresh_server(
    tmp_path: Path, smtp: ThreadedSMTP, new_context: Any, shot: Any
) -> None:
    port = free_port()
    env = _clean_env({"SATCHEL_MAIL_URL": f"smtp://127.0.0.1:{smtp.port}"})
    proc = subprocess.Popen(
        [str(SATCHEL), "serve", "--port", str(port), "--store", "memory://"],
        env=env,
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    try:
        output = _Output(proc)
        link = output.wait_for("/setup?token=")
        assert link.startswith(f"http://127.0.0.1:{port}/setup?token=")
        page = new_context().new_page()
        page.goto(link)
        page.get_by_label("Administrator username").fill("root")
        page.get_by_label("Password", exact=True).fill(ALICE_PASSWORD)
        page.get_by_label("Repeat the password").fill(ALICE_PASSWORD)
        shot(page, "setup")
        with page.expect_navigation():
            page.get_by_role("button", name="Create administrator").click()
        assert page.url == f"http://127.0.0.1:{port}/"
        assert page.get_by_role("link", name="Admin").is_visible()

        second = new_context().new_page()
        second.goto(link)
        second.get_by_label("Administrator username").fill("mallory")
        second.get_by_label("Password", exact=True).fill(ALICE_PASSWORD)
        second.get_by_label("Repeat the password").fill(ALICE_PASSWORD)
        second.get_by_role("button", name="Create administrator").click()
        assert "invalid or has expired" in second.get_by_role("alert").inner_text()
    finally:
        proc.terminate()
        proc.wait(15)
