"""Every log line of every attack test, checked for secrets (autouse, see conftest.py).

During each test every record of every logger is captured at DEBUG, formatted as the JSON
line the server would write (each must parse) and kept raw: the message, the audit fields
and any traceback, before the formatter's scrubbing (which is only a second line of
defence). Meanwhile every HTTP exchange with the in-process server is watched for what must
never be logged: passwords sent, tokens and cookie values handed out or presented, CSRF
tokens, refresh tokens, session secrets. After the test none of them may appear in any raw
line, and no line may hold a JWT, a session token or a private key.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Iterator
from typing import Any
from urllib.parse import parse_qsl

import httpx
import pytest

from satchel.ops.logging import JsonFormatter

#: Shapes that are secrets wherever they appear in a log line.
SECRET_SHAPES = (
    re.compile(r"eyJ[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]{16,}"),  # a signed JWT
    re.compile(r"[A-Za-z0-9_-]{22}\.[A-Za-z0-9_-]{43}"),  # a session token id.secret
    re.compile(r"PRIVATE KEY-----"),
)
_SECRET_FIELDS = re.compile(r"(?i)pass|token|secret|code|key")
MIN_SECRET = 8  # shorter strings ("x", "alice") are too common to mean anything
LOGGERS = ("", "satchel", "uvicorn", "uvicorn.error", "fastapi", "starlette", "asyncio")
#: The test's own HTTP client (it logs the URLs it requests, tokens in query strings included
#: when a test puts them there): not the server, not checked.
# The test clients and the test SMTP server (aiosmtpd logs each message it receives, links
# included): what they log is the tests' traffic, not satchel's log.
CLIENT_LOGGERS = ("httpx", "httpcore", "mail.log")


class Guard(logging.Handler):
    """Collects raw log text and JSON lines, and the secrets seen on the wire."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.raw: list[str] = []
        self.names: list[str] = []  # the logger of each raw line
        self.json_lines: list[str] = []
        self.secrets: set[str] = set()
        self._json = JsonFormatter()

    def emit(self, record: logging.LogRecord) -> None:
        if record.name in CLIENT_LOGGERS or record.name.split(".")[0] in CLIENT_LOGGERS:
            return
        text = record.getMessage() + " " + repr(getattr(record, "satchel_event", ""))
        if record.exc_info:
            text += logging.Formatter().formatException(record.exc_info)
        self.raw.append(text)
        self.names.append(record.name)
        self.json_lines.append(self._json.format(record))

    def add(self, value: object) -> None:
        if isinstance(value, str) and len(value) >= MIN_SECRET:
            self.secrets.add(value)
            if "." in value:  # id.secret: the secret half alone must not appear either
                tail = value.rsplit(".", 1)[1]
                if len(tail) >= 20:
                    self.secrets.add(tail)

    def watch_request(self, request: httpx.Request) -> None:
        for name, value in request.headers.items():
            if name.lower() == "authorization":
                self.add(value.partition(" ")[2].strip())
            elif name.lower() == "cookie":
                for pair in value.split(";"):
                    self.add(pair.partition("=")[2].strip())
            elif name.lower() == "x-csrf-token":
                self.add(value)
        body = request.content
        if not body or len(body) > 100_000:
            return
        text = body.decode("utf-8", "replace")
        fields: list[tuple[str, Any]] = []
        try:
            data = json.loads(text)
            if isinstance(data, dict):
                fields = list(data.items())
        except ValueError:
            fields = parse_qsl(text, keep_blank_values=True)
        for key, value in fields:
            if _SECRET_FIELDS.search(str(key)):
                self.add(value)

    def watch_response(self, response: httpx.Response, body: bytes) -> None:
        for value in response.headers.get_list("set-cookie"):
            self.add(value.split(";", 1)[0].partition("=")[2])
        if not body.startswith(b"{") or len(body) > 100_000:
            return
        try:
            data = json.loads(body)
        except ValueError:
            return
        if isinstance(data, dict):
            for key, value in data.items():
                if _SECRET_FIELDS.search(key) and key != "token_type":
                    self.add(value)

    def leaks(self) -> list[str]:
        """What leaked: secret lengths and shapes only, never the secret itself."""
        found = []
        for n, (name, line) in enumerate(zip(self.names, self.raw, strict=True)):
            where = f"line {n} of logger {name!r}"
            for secret in self.secrets:
                if secret in line:
                    found.append(f"a {len(secret)}-character secret from the wire in {where}")
            for shape in SECRET_SHAPES:
                if shape.search(line):
                    found.append(f"a {shape.pattern[:20]}... shape in {where}")
        return found


@pytest.fixture(autouse=True)
def log_guard(monkeypatch: pytest.MonkeyPatch) -> Iterator[Guard]:
    """Fails the test if a secret reached a log line (see the module docstring)."""
    guard = Guard()
    original = httpx.ASGITransport.handle_async_request

    async def watched(self: httpx.ASGITransport, request: httpx.Request) -> httpx.Response:
        guard.watch_request(request)
        response = await original(self, request)
        body = b"".join([part async for part in response.stream])  # type: ignore[union-attr]
        guard.watch_response(response, body)
        return httpx.Response(
            response.status_code,
            headers=response.headers,
            content=body,
            extensions=response.extensions,
        )

    monkeypatch.setattr(httpx.ASGITransport, "handle_async_request", watched)
    saved = {name: logging.getLogger(name).level for name in LOGGERS}
    for name in LOGGERS:
        logging.getLogger(name).setLevel(logging.DEBUG)
    root = logging.getLogger()
    root.addHandler(guard)
    try:
        yield guard
    finally:
        root.removeHandler(guard)
        for name, level in saved.items():
            logging.getLogger(name).setLevel(level)
    for line in guard.json_lines:
        parsed = json.loads(line)
        assert {"time", "level", "event", "message"} <= set(parsed), line
        assert "\n" not in line
    leaks = guard.leaks()
    assert not leaks, "secrets in log lines:\n" + "\n".join(leaks[:10])
