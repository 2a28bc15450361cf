"""A real SMTP server for the tests (aiosmtpd), a self-signed certificate, mail parsing.

``smtp_server(...)`` runs aiosmtpd on a free 127.0.0.1 port in the test's own event loop,
plain, with STARTTLS or with implicit TLS, optionally requiring AUTH (which aiosmtpd only
offers over TLS). ``ThreadedSMTP`` runs the same in a thread, for tests that are not async
(Playwright). Every received mail is parsed with the standard library and kept in
``catcher.messages``.
"""

from __future__ import annotations

import asyncio
import datetime
import email
import email.policy
import ipaddress
import re
import socket
import ssl
import threading
import time
import warnings
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from email.message import EmailMessage
from pathlib import Path
from typing import Any

from aiosmtpd.smtp import SMTP, AuthResult, Envelope, LoginPassword, Session

USER = "mailer"
PASSWORD = "s3cret-smtp-pass"


@dataclass
class Received:
    """One mail as the server got it."""

    envelope_from: str
    envelope_to: list[str]
    message: EmailMessage
    raw: bytes

    @property
    def text(self) -> str:
        body = self.message.get_body(("plain",))
        assert body is not None
        return str(body.get_content())

    @property
    def html(self) -> str | None:
        body = self.message.get_body(("html",))
        return None if body is None else str(body.get_content())

    def link(self, path: str) -> str:
        """The first link in the text body whose path is ``path``."""
        match = re.search(r"https?://\S+" + re.escape(path) + r"\?token=[A-Za-z0-9_\-]+", self.text)
        assert match, f"no {path} link in:\n{self.text}"
        return match.group(0)

    def token(self, path: str) -> str:
        return self.link(path).rsplit("token=", 1)[1]

    def code(self) -> str:
        match = re.search(r"code on the sign-in page: (\d{6})", self.text)
        assert match, self.text
        return match.group(1)


@dataclass
class Catcher:
    """aiosmtpd handler keeping every mail; ``refuse`` makes it answer 550 to each."""

    messages: list[Received] = field(default_factory=list)
    authenticated: list[str] = field(default_factory=list)
    refuse: bool = False
    tls_seen: list[bool] = field(default_factory=list)

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        if self.refuse:
            return "550 mailbox unavailable"
        raw = envelope.original_content or b""
        parsed = email.message_from_bytes(raw, policy=email.policy.default)
        assert isinstance(parsed, EmailMessage)
        implicit = server.transport is not None and server.transport.get_extra_info("ssl_object")
        self.tls_seen.append(session.ssl is not None or implicit is not None)
        self.messages.append(
            Received(str(envelope.mail_from), list(envelope.rcpt_tos), parsed, raw)
        )
        return "250 OK"

    def to(self, address: str) -> list[Received]:
        return [m for m in self.messages if address in m.envelope_to]

    async def wait_for(self, address: str, count: int = 1, timeout: float = 10.0) -> Received:
        deadline = time.monotonic() + timeout
        while len(self.to(address)) < count:
            if time.monotonic() > deadline:
                raise AssertionError(f"no mail #{count} to {address} within {timeout} s")
            await asyncio.sleep(0.01)
        return self.to(address)[count - 1]

    def wait_for_sync(self, address: str, count: int = 1, timeout: float = 15.0) -> Received:
        deadline = time.monotonic() + timeout
        while len(self.to(address)) < count:
            if time.monotonic() > deadline:
                raise AssertionError(f"no mail #{count} to {address} within {timeout} s")
            time.sleep(0.02)
        return self.to(address)[count - 1]


def authenticator(catcher: Catcher) -> Any:
    def check(
        server: SMTP, session: Session, envelope: Envelope, mechanism: str, auth_data: Any
    ) -> AuthResult:
        ok = (
            isinstance(auth_data, LoginPassword)
            and auth_data.login == USER.encode()
            and auth_data.password == PASSWORD.encode()
        )
        if ok:
            catcher.authenticated.append(mechanism)
        return AuthResult(success=ok, handled=False)

    return check


def make_certificate(folder: Path) -> tuple[Path, Path]:
    """A self-signed certificate for 127.0.0.1 / localhost (also its own CA): (cert, key)."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "satchel test mail")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
            ),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = folder / "mail-cert.pem", folder / "mail-key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert_path, key_path


def server_tls(cert: Path, key: Path) -> ssl.SSLContext:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert, key)
    return context


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _factory(catcher: Catcher, mode: str, tls: ssl.SSLContext | None, auth: bool) -> Any:
    def make() -> SMTP:
        with warnings.catch_warnings():
            # Implicit TLS: aiosmtpd warns that AUTH does not require STARTTLS.
            warnings.simplefilter("ignore", UserWarning)
            return _smtp(catcher, mode, tls, auth)

    return make


def _smtp(catcher: Catcher, mode: str, tls: ssl.SSLContext | None, auth: bool) -> SMTP:
    return SMTP(
        catcher,
        hostname="mail.test",
        tls_context=tls if mode == "starttls" else None,
        require_starttls=mode == "starttls",
        authenticator=authenticator(catcher) if auth else None,
        auth_required=auth,
        # AUTH is offered over TLS only. aiosmtpd tracks STARTTLS itself; with implicit TLS
        # the whole connection is encrypted before it sees a byte.
        auth_require_tls=mode != "tls",
    )


@asynccontextmanager
async def smtp_server(
    mode: str = "plain",
    *,
    tls: ssl.SSLContext | None = None,
    auth: bool = False,
    port: int = 0,
) -> AsyncIterator[tuple[Catcher, int]]:
    """Serve SMTP on 127.0.0.1 (``mode``: plain, starttls or tls) in this event loop."""
    catcher = Catcher()
    loop = asyncio.get_running_loop()
    server = await loop.create_server(
        _factory(catcher, mode, tls, auth),
        "127.0.0.1",
        port,
        ssl=tls if mode == "tls" else None,
    )
    bound = server.sockets[0].getsockname()[1]
    try:
        yield catcher, bound
    finally:
        server.close()
        await server.wait_closed()


class ThreadedSMTP:
    """The same server in a thread of its own (for synchronous tests)."""

    def __init__(self, mode: str = "plain", tls: ssl.SSLContext | None = None) -> None:
        self.catcher = Catcher()
        self.port = free_port()
        self._mode, self._tls = mode, tls
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._server: asyncio.base_events.Server | None = None

    def start(self) -> ThreadedSMTP:
        self._thread.start()

        async def open_server() -> asyncio.base_events.Server:
            return await self._loop.create_server(
                _factory(self.catcher, self._mode, self._tls, False), "127.0.0.1", self.port
            )

        self._server = asyncio.run_coroutine_threadsafe(open_server(), self._loop).result(10)
        return self

    def stop(self) -> None:
        async def close() -> None:
            if self._server is not None:
                self._server.close()
                await self._server.wait_closed()

        asyncio.run_coroutine_threadsafe(close(), self._loop).result(10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)
