"""Logs for operators: a request id on every request and line, JSON lines, secrets scrubbed.

- :class:`RequestIdMiddleware` (pure ASGI) takes ``X-Request-ID`` from the request when it is
  a short token (else makes one), echoes it in the response and puts it in a context
  variable, so every log line written while serving the request carries it.
- :class:`JsonFormatter`: one JSON object per line with ``time``, ``level``, ``event``,
  ``logger``, ``message``, ``request_id`` and the fields of an audit event
  (:mod:`satchel.audit`) or of an access-log line.
- :class:`TextFormatter`: the same facts on one readable line.
- :func:`log_config`: the ``logging.config`` dictionary the server gives uvicorn.

Code never logs a password, token, cookie value, session secret or key. As a second line of
defence both formatters scrub what looks like one (a JWT, a session token, a long random
string, a URL password, a bearer value, one of our cookies, a PEM key) from every line, and
query strings are cut from access-log paths (credentials are never read from them, but a
client may still put one there).
"""

from __future__ import annotations

import itertools
import json
import logging
import re
import secrets
import time
from contextvars import ContextVar
from typing import Any, Final

from satchel.integrations.asgi import ASGIApp, Message, Receive, Scope, Send

#: The request being served (its id), for log records written meanwhile.
REQUEST_ID: ContextVar[str | None] = ContextVar("satchel_request_id", default=None)
HEADER: Final = b"x-request-id"
# A client's id is kept only when it is a short plain token: it lands in every log line.
_CLIENT_ID = re.compile(rb"[A-Za-z0-9._:\-]{1,128}")

_SCRUB: tuple[tuple[re.Pattern[str], str], ...] = (
    (
        re.compile(r"-----BEGIN [A-Z ]*PRIVATE KEY-----.*?-----END [A-Z ]*PRIVATE KEY-----", re.S),
        "[private key]",
    ),
    (re.compile(r"\beyJ[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]*"), "[jwt]"),
    (re.compile(r"(?i)\b(bearer|basic)\s+[A-Za-z0-9._~+/=-]+"), r"\1 [redacted]"),
    (re.compile(r"(://[^:/@\s]*:)[^@\s/]+@"), r"\1***@"),
    (
        re.compile(r"(__Host-satchel[\w-]*|__Secure-satchel[\w-]*|satchel_\w+)=[^;\s\"',]+"),
        r"\1=[redacted]",
    ),
    # Session secrets (43), refresh tokens, CSRF nonces, HS256 secrets, key material: every
    # credential satchel makes holds a run of 40+ base64url characters; ids are shorter.
    (re.compile(r"[A-Za-z0-9_-]{40,}"), "[redacted]"),
)


def scrub(text: str) -> str:
    """``text`` with anything shaped like a credential, key or URL password replaced."""
    for pattern, replacement in _SCRUB:
        text = pattern.sub(replacement, text)
    return text


#: Request ids are this process's random prefix and a counter: unique, cheap (no system
#: call per request) and meaningless, which is all an id that lands in logs should be.
_PREFIX = secrets.token_hex(4)
_COUNTER = itertools.count(1)


def new_request_id() -> str:
    """A fresh request id: 16 hex digits."""
    return f"{_PREFIX}{next(_COUNTER) & 0xFFFFFFFF:08x}"


class RequestIdMiddleware:
    """Gives every HTTP request an id (``X-Request-ID``, kept or made) and echoes it."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request_id: str | None = None
        for name, value in scope.get("headers", ()):
            if name == HEADER:
                if _CLIENT_ID.fullmatch(value):
                    request_id = value.decode("ascii")
                break
        if request_id is None:
            request_id = new_request_id()
        pair = (HEADER, request_id.encode("ascii"))

        async def send_with_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                # A new list: the response object may keep (and reuse) its own.
                message["headers"] = [*(message.get("headers") or ()), pair]
            await send(message)

        token = REQUEST_ID.set(request_id)
        try:
            await self.app(scope, receive, send_with_id)
        finally:
            REQUEST_ID.reset(token)


def _access_fields(record: logging.LogRecord) -> dict[str, Any] | None:
    """Client, method, path, status of a uvicorn access-log record (its args)."""
    args = record.args
    if record.name != "uvicorn.access" or not isinstance(args, tuple) or len(args) != 5:
        return None
    client, method, path, _version, status = args
    return {"client": str(client), "method": str(method), "path": str(path), "status": status}


class StripQuery(logging.Filter):
    """Cuts the query string from uvicorn access-log paths (kept as ``?…``)."""

    def filter(self, record: logging.LogRecord) -> bool:
        args = record.args
        if record.name == "uvicorn.access" and isinstance(args, tuple) and len(args) == 5:
            path = str(args[2])
            if "?" in path:
                record.args = (args[0], args[1], path.split("?", 1)[0] + "?…", args[3], args[4])
        return True


def _fields(record: logging.LogRecord) -> tuple[str, dict[str, Any]]:
    """The record's event name and its structured fields."""
    event = getattr(record, "satchel_event", None)
    if isinstance(event, dict):
        fields = {k: v for k, v in event.items() if k != "event"}
        return str(event.get("event", "audit")), fields
    access = _access_fields(record)
    if access is not None:
        return "http.request", access
    return record.name, {}


def _iso(created: float) -> str:
    seconds = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(created))
    return f"{seconds}.{int(created % 1 * 1000):03d}Z"


class JsonFormatter(logging.Formatter):
    """One JSON object per line (see the module docstring); never raises on odd records."""

    def format(self, record: logging.LogRecord) -> str:
        event, fields = _fields(record)
        out: dict[str, Any] = {
            "time": _iso(record.created),
            "level": record.levelname.lower(),
            "event": event,
            "logger": record.name,
            "message": scrub(record.getMessage()),
        }
        request_id = getattr(record, "request_id", None) or REQUEST_ID.get()
        if request_id:
            out["request_id"] = request_id
        for key, value in fields.items():
            if key not in out:
                out[key] = value if isinstance(value, int | float) else scrub(str(value))
        if record.exc_info and record.exc_info[0] is not None:
            out["error"] = record.exc_info[0].__name__
            out["traceback"] = scrub(self.formatException(record.exc_info))
        return json.dumps(out, ensure_ascii=True, separators=(",", ":"), default=str)


class TextFormatter(logging.Formatter):
    """``time level logger: message key=value ... request_id=...`` on one line, scrubbed."""

    def format(self, record: logging.LogRecord) -> str:
        parts = [
            _iso(record.created),
            record.levelname.lower(),
            f"{record.name}:",
            record.getMessage(),
        ]
        request_id = getattr(record, "request_id", None) or REQUEST_ID.get()
        if request_id:
            parts.append(f"request_id={request_id}")
        line = " ".join(parts)
        if record.exc_info and record.exc_info[0] is not None:
            line += "\n" + self.formatException(record.exc_info)
        # One record, one line: a newline in a message or trace cannot forge another line.
        return scrub(line).replace("\r", "\\r").replace("\n", "\\n ")


def log_config(log_format: str, level: str) -> dict[str, Any]:
    """The ``logging.config.dictConfig`` for the server: uvicorn's loggers and every other
    logger (satchel's included) on standard error, in ``log_format`` (``text`` or ``json``).

    Text keeps uvicorn's own line format for its loggers; JSON uses one formatter for all.
    """
    upper = level.upper()
    ours = (
        "satchel.ops.logging.JsonFormatter"
        if log_format == "json"
        else ("satchel.ops.logging.TextFormatter")
    )
    formatters: dict[str, Any] = {"satchel": {"()": ours}}
    if log_format == "json":
        formatters["default"] = formatters["access"] = {"()": ours}
    else:
        formatters["default"] = {
            "()": "uvicorn.logging.DefaultFormatter",
            "fmt": "%(levelprefix)s %(message)s",
            "use_colors": None,
        }
        formatters["access"] = {
            "()": "uvicorn.logging.AccessFormatter",
            "fmt": '%(levelprefix)s %(client_addr)s - "%(request_line)s" %(status_code)s',
        }

    def handler(formatter: str) -> dict[str, Any]:
        return {
            "class": "logging.StreamHandler",
            "formatter": formatter,
            "stream": "ext://sys.stderr",
            "filters": ["strip_query"],
        }

    return {
        "version": 1,
        "disable_existing_loggers": False,
        "filters": {"strip_query": {"()": "satchel.ops.logging.StripQuery"}},
        "formatters": formatters,
        "handlers": {
            "default": handler("default"),
            "access": handler("access"),
            "satchel": handler("satchel"),
        },
        "loggers": {
            "uvicorn": {"handlers": ["default"], "level": upper, "propagate": False},
            "uvicorn.error": {"level": upper},
            "uvicorn.access": {"handlers": ["access"], "level": upper, "propagate": False},
        },
        "root": {"handlers": ["satchel"], "level": upper},
    }
