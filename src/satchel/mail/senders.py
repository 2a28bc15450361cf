"""Senders: the last hop of a mail, one per kind of mail URL (:mod:`satchel.mail.urls`).

Each sender has one coroutine, ``send(message)``, that delivers a built
:class:`~email.message.EmailMessage` or raises; the queue (:mod:`satchel.mail.outbox`)
retries what raises, except :class:`~satchel.accounts.jobs.PermanentFailure` (a recipient
or message refused with a 5xx reply, or no mail configured at all).
"""

from __future__ import annotations

import asyncio
import os
import secrets
import ssl
import sys
import time
from email.message import EmailMessage
from typing import Protocol, TextIO, runtime_checkable

from satchel.accounts.jobs import PermanentFailure
from satchel.errors import ConfigurationError
from satchel.mail.urls import MailURL, parse_mail_url


@runtime_checkable
class Sender(Protocol):
    """Delivers one message, or raises."""

    async def send(self, message: EmailMessage) -> None:
        """Hand ``message`` over to its transport."""
        ...


class SMTPSender:
    """Delivers through an SMTP server with :mod:`aiosmtplib`, one connection per message."""

    def __init__(self, url: MailURL) -> None:
        try:
            import aiosmtplib  # noqa: F401 - checked here so a missing extra fails at start
        except ImportError as exc:
            raise ConfigurationError(
                "SMTP mail needs an optional dependency: pip install 'satchel[mail]'."
            ) from exc
        self.url = url
        self._tls: ssl.SSLContext | None = None
        if url.scheme != "smtp":
            self._tls = ssl.create_default_context(cafile=url.cafile)

    def __repr__(self) -> str:
        return f"SMTPSender({self.url.redacted()!r})"

    async def send(self, message: EmailMessage) -> None:
        import aiosmtplib

        url = self.url
        try:
            await aiosmtplib.send(
                message,
                hostname=url.host,
                port=url.port,
                username=url.username,
                password=url.password,
                use_tls=url.scheme == "smtps",
                start_tls=url.scheme == "smtp+starttls",
                tls_context=self._tls,
                timeout=url.timeout,
            )
        except aiosmtplib.SMTPResponseException as exc:
            # 5xx is the server's final word on this message; 4xx (and anything else) may
            # pass on a later attempt.
            if 500 <= exc.code < 600 and not isinstance(exc, aiosmtplib.SMTPAuthenticationError):
                raise PermanentFailure(f"refused by the mail server ({exc.code})") from None
            raise
        except aiosmtplib.SMTPRecipientsRefused:
            raise PermanentFailure("recipient refused by the mail server") from None


class ConsoleSender:
    """Writes each message (headers and text body, links included) to ``stream``.

    For development: the mail goes to the server's output, where whoever runs the server
    reads it. Never use it where the output is collected by someone else.
    """

    def __init__(self, stream: TextIO | None = None) -> None:
        self._stream = stream

    def __repr__(self) -> str:
        return "ConsoleSender()"

    async def send(self, message: EmailMessage) -> None:
        stream = self._stream if self._stream is not None else sys.stderr
        body = message.get_body(("plain",))
        text = body.get_content() if body is not None else ""
        lines = [
            "----- mail (console://) -----",
            f"To: {message['To']}",
            f"Subject: {message['Subject']}",
            "",
            text.rstrip(),
            "----- end of mail -----",
        ]
        stream.write("\n".join(lines) + "\n")
        stream.flush()


class FileSender:
    """Writes each message to ``directory`` as ``<time>-<random>.eml`` (mode 0600).

    The file is written under a temporary name and renamed, so a reader never sees half a
    message.
    """

    def __init__(self, directory: str) -> None:
        self.directory = directory

    def __repr__(self) -> str:
        return f"FileSender({self.directory!r})"

    def _write(self, data: bytes) -> str:
        os.makedirs(self.directory, mode=0o700, exist_ok=True)
        name = f"{time.time_ns()}-{secrets.token_hex(4)}.eml"
        final = os.path.join(self.directory, name)
        temp = os.path.join(self.directory, f".{name}.tmp")
        fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            with os.fdopen(fd, "wb") as handle:
                handle.write(data)
            os.replace(temp, final)
        except BaseException:
            if os.path.exists(temp):
                os.unlink(temp)
            raise
        return final

    async def send(self, message: EmailMessage) -> None:
        await asyncio.to_thread(self._write, message.as_bytes())


class NoSender:
    """``none://``: no mail is configured; every message fails at once (logged, counted)."""

    def __repr__(self) -> str:
        return "NoSender()"

    async def send(self, message: EmailMessage) -> None:
        raise PermanentFailure("no mail transport is configured (SATCHEL_MAIL_URL)")


def open_sender(url: str | MailURL) -> Sender:
    """The sender for a mail URL (see :mod:`satchel.mail.urls`)."""
    parsed = parse_mail_url(url) if isinstance(url, str) else url
    if parsed.scheme == "console":
        return ConsoleSender()
    if parsed.scheme == "file":
        assert parsed.directory is not None
        return FileSender(parsed.directory)
    if parsed.scheme == "none":
        return NoSender()
    return SMTPSender(parsed)
