"""Outgoing mail against a real SMTP server (aiosmtpd): plain, STARTTLS and implicit TLS,
AUTH, the console and file senders, the outbox's retries and the header rules."""

from __future__ import annotations

import asyncio
import email
import email.policy
import io
import logging
import os
import stat
from pathlib import Path

import pytest

from mailhelpers import PASSWORD, USER, make_certificate, server_tls, smtp_server
from satchel.errors import ConfigurationError, InvalidInput
from satchel.mail import (
    ConsoleSender,
    FileSender,
    MailOutbox,
    MailTemplates,
    Rendered,
    build_message,
    open_sender,
    parse_mail_url,
)
from satchel.mail.senders import NoSender, SMTPSender

FROM = "satchel <no-reply@example.com>"
CONTEXT = {
    "site_name": "satchel",
    "public_url": "https://auth.example.com",
    "username": "alice",
    "link": "https://auth.example.com/reset-password?token=abc",
    "expires_in": "30 minutes",
}


def outbox(url: str, **options: object) -> MailOutbox:
    options.setdefault("retry_delay", 0.01)
    return MailOutbox(open_sender(url), from_address=FROM, **options)  # type: ignore[arg-type]


# --- URLs ---------------------------------------------------------------------------------


def test_mail_urls() -> None:
    url = parse_mail_url("smtps://me%40example.com:p%3Ass@mail.example.com")
    assert (url.scheme, url.host, url.port) == ("smtps", "mail.example.com", 465)
    assert (url.username, url.password) == ("me@example.com", "p:ss")
    assert "p:ss" not in repr(url) and "***" in repr(url)
    assert parse_mail_url("smtp+starttls://u:p@h").port == 587
    assert parse_mail_url("smtp://relay.internal").port == 25
    assert parse_mail_url("file:///var/spool/satchel/").directory == "/var/spool/satchel"
    assert parse_mail_url("console://").scheme == "console"
    assert parse_mail_url("smtp://u:p@127.0.0.1:2525?timeout=3").timeout == 3.0


@pytest.mark.parametrize(
    "url",
    [
        "smtp://user:secretpw@mail.example.com",  # password in clear to a remote host
        "imap://user:secretpw@mail.example.com",
        "smtp://mail.example.com?verify=false",
        "smtp://mail.example.com?cafile=/nonexistent/ca.pem",
        "smtp://mail.example.com:99999",
        "file://relative/dir",
        "console://extra",
        "smtp://:secretpw@mail.example.com",
        "",
    ],
)
def test_bad_mail_urls_never_echo_the_password(url: str) -> None:
    with pytest.raises(ConfigurationError) as caught:
        parse_mail_url(url)
    assert "secretpw" not in str(caught.value)
    assert "SATCHEL_MAIL_URL" in str(caught.value)


# --- messages -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "to",
    [
        "victim@example.com\r\nBcc: attacker@evil.test",
        "victim@example.com\nBcc: attacker@evil.test",
        "victim@example.com, attacker@evil.test",
        "Victim <victim@example.com>",
        "victim@example.com>",
        "not-an-address",
        "",
    ],
)
def test_header_injection_in_the_recipient_is_refused(to: str) -> None:
    with pytest.raises(InvalidInput):
        build_message(sender=FROM, to=to, rendered=Rendered("Hi", "text"))


def test_subject_stays_on_one_line() -> None:
    message = build_message(
        sender=FROM, to="a@example.com", rendered=Rendered("Hi\r\nBcc: x@evil.test", "t")
    )
    assert message["Subject"] == "Hi Bcc: x@evil.test"
    assert message.get_all("Bcc") is None
    parsed = email.message_from_bytes(message.as_bytes(), policy=email.policy.default)
    assert parsed["To"] == "a@example.com" and parsed["Bcc"] is None


def test_templates_can_be_overridden(tmp_path: Path) -> None:
    (tmp_path / "password_reset.subject.txt").write_text("Custom: {{ username }}")
    (tmp_path / "password_reset.txt").write_text("Go to {{ link }}")
    rendered = MailTemplates(tmp_path).render("password_reset", CONTEXT)
    assert rendered.subject == "Custom: alice"
    assert rendered.text == "Go to https://auth.example.com/reset-password?token=abc"
    assert rendered.html is not None and "Choose a new password" in rendered.html  # bundled
    bundled = MailTemplates().render("password_reset", CONTEXT)
    assert "Reset your satchel password" in bundled.subject


def test_html_is_escaped() -> None:
    rendered = MailTemplates().render("password_reset", {**CONTEXT, "username": "<b>x</b>"})
    assert rendered.html is not None and "<b>x</b>" not in rendered.html
    assert "&lt;b&gt;x&lt;/b&gt;" in rendered.html
    assert "<b>x</b>" in rendered.text


# --- SMTP ---------------------------------------------------------------------------------


async def test_plain_smtp_delivers_text_and_html() -> None:
    async with smtp_server("plain") as (catcher, port):
        box = outbox(f"smtp://127.0.0.1:{port}")
        assert box.send("password_reset", "alice@example.com", CONTEXT)
        await box.join()
        await box.close()
    (mail,) = catcher.messages
    assert mail.envelope_to == ["alice@example.com"]
    assert mail.message["From"] == FROM and mail.message["To"] == "alice@example.com"
    assert mail.message["Auto-Submitted"] == "auto-generated"
    assert CONTEXT["link"] in mail.text
    assert mail.html is not None and CONTEXT["link"] in mail.html
    assert box.stats.done == 1 and box.stats.failed == 0


async def test_starttls_with_auth(tmp_path: Path) -> None:
    cert, key = make_certificate(tmp_path)
    async with smtp_server("starttls", tls=server_tls(cert, key), auth=True) as (catcher, port):
        url = f"smtp+starttls://{USER}:{PASSWORD}@127.0.0.1:{port}?cafile={cert}"
        box = outbox(url)
        box.send("password_reset", "alice@example.com", CONTEXT)
        await box.join()
        await box.close()
    assert len(catcher.messages) == 1
    assert catcher.authenticated and catcher.tls_seen == [True]
    assert box.stats.done == 1


async def test_implicit_tls_with_auth(tmp_path: Path) -> None:
    cert, key = make_certificate(tmp_path)
    async with smtp_server("tls", tls=server_tls(cert, key), auth=True) as (catcher, port):
        box = outbox(f"smtps://{USER}:{PASSWORD}@127.0.0.1:{port}?cafile={cert}")
        box.send("password_reset", "alice@example.com", CONTEXT)
        await box.join()
        await box.close()
    assert len(catcher.messages) == 1 and catcher.authenticated and catcher.tls_seen == [True]


async def test_tls_refuses_an_untrusted_certificate(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    cert, key = make_certificate(tmp_path)
    async with smtp_server("tls", tls=server_tls(cert, key)) as (catcher, port):
        box = outbox(f"smtps://{USER}:{PASSWORD}@127.0.0.1:{port}", attempts=2)
        with caplog.at_level(logging.WARNING, logger="satchel"):
            box.send("password_reset", "alice@example.com", CONTEXT)
            await box.join()
        await box.close()
    assert catcher.messages == [] and box.stats.failed == 1
    assert PASSWORD not in caplog.text


async def test_wrong_smtp_password_is_not_logged(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    cert, key = make_certificate(tmp_path)
    async with smtp_server("tls", tls=server_tls(cert, key), auth=True) as (catcher, port):
        box = outbox(f"smtps://{USER}:wrong-pass-123@127.0.0.1:{port}?cafile={cert}", attempts=2)
        with caplog.at_level(logging.WARNING, logger="satchel"):
            box.send("password_reset", "alice@example.com", CONTEXT)
            await box.join()
        await box.close()
    assert catcher.messages == [] and box.stats.failed == 1 and box.stats.retried == 1
    assert "wrong-pass-123" not in caplog.text and "token=abc" not in caplog.text
    assert "a***@example.com" in caplog.text


async def test_refused_message_is_not_retried(caplog: pytest.LogCaptureFixture) -> None:
    async with smtp_server("plain") as (catcher, port):
        catcher.refuse = True
        box = outbox(f"smtp://127.0.0.1:{port}", attempts=4)
        with caplog.at_level(logging.ERROR, logger="satchel"):
            box.send("password_reset", "alice@example.com", CONTEXT)
            await box.join()
        await box.close()
    assert box.stats.failed == 1 and box.stats.retried == 0
    assert "not retried" in caplog.text


async def test_mail_server_down_then_back_is_retried() -> None:
    from mailhelpers import free_port

    port = free_port()
    box = outbox(f"smtp://127.0.0.1:{port}?timeout=2", attempts=6, retry_delay=0.2)
    box.send("password_reset", "alice@example.com", CONTEXT)
    await asyncio.sleep(0.3)  # the first attempt finds nobody listening
    assert box.stats.retried >= 1
    async with smtp_server("plain", port=port) as (catcher, _):
        await box.join()
    await box.close()
    assert len(catcher.messages) == 1 and box.stats.done == 1


async def test_mail_server_down_gives_up_and_logs(caplog: pytest.LogCaptureFixture) -> None:
    from mailhelpers import free_port

    box = outbox(f"smtp://127.0.0.1:{free_port()}?timeout=1", attempts=3)
    with caplog.at_level(logging.WARNING, logger="satchel"):
        box.send("password_reset", "alice@example.com", CONTEXT)
        await box.join()
    await box.close()
    assert (box.stats.retried, box.stats.failed, box.stats.done) == (2, 1, 0)
    assert "given up" in caplog.text and "token=abc" not in caplog.text


async def test_full_queue_drops_and_counts() -> None:
    box = MailOutbox(NoSender(), from_address=FROM, max_size=2)
    box.queue._tasks.append(asyncio.create_task(asyncio.sleep(3600)))  # no worker drains
    results = [box.send("password_reset", "alice@example.com", CONTEXT) for _ in range(4)]
    assert results == [True, True, False, False] and box.stats.dropped == 2
    box.queue._tasks[0].cancel()
    box.queue._tasks.clear()


def test_smtp_sender_needs_the_extra_only_for_smtp() -> None:
    assert isinstance(open_sender("smtp://127.0.0.1:2525"), SMTPSender)
    assert isinstance(open_sender("console://"), ConsoleSender)


# --- console and file ---------------------------------------------------------------------


async def test_console_sender_writes_the_mail() -> None:
    stream = io.StringIO()
    box = MailOutbox(ConsoleSender(stream), from_address=FROM)
    box.send("password_reset", "alice@example.com", CONTEXT)
    await box.join()
    await box.close()
    out = stream.getvalue()
    assert "To: alice@example.com" in out and CONTEXT["link"] in out


async def test_file_sender_writes_one_private_eml_each(tmp_path: Path) -> None:
    folder = tmp_path / "outbox"
    box = MailOutbox(open_sender(f"file://{folder}"), from_address=FROM)
    assert isinstance(box.sender, FileSender)
    for name in ("alice", "bob"):
        box.send("password_reset", f"{name}@example.com", {**CONTEXT, "username": name})
    await box.join()
    await box.close()
    files = sorted(folder.glob("*.eml"))
    assert len(files) == 2 and not list(folder.glob(".*"))
    assert stat.S_IMODE(os.stat(files[0]).st_mode) == 0o600
    parsed = [email.message_from_bytes(f.read_bytes(), policy=email.policy.default) for f in files]
    assert {m["To"] for m in parsed} == {"alice@example.com", "bob@example.com"}
