"""The JSON API's requests and responses without a framework: what a route reads, what it
answers, and how every error becomes ``{"error": code, "detail": text}``.

A framework adapter (Flask, Django, Litestar...) turns its request into an
:class:`ApiRequest` — raw header pairs with lower-case names, as the transports read them,
the body, the parsed form when there is one — and writes the :class:`ApiResponse` back. The
body rules (JSON object or form, field types and bounds, the ``csrf_token`` field) and the
error mapping are here once, so every framework answers the same request the same way.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from http import HTTPStatus
from typing import Any, Final

from pydantic import BaseModel, ValidationError

from satchel.auth import Auth
from satchel.errors import (
    AuthenticationError,
    InvalidInput,
    SatchelError,
    StoreUnavailable,
    Throttled,
)
from satchel.identity import Identity
from satchel.integrations.asgi import challenge_headers, json_body
from satchel.integrations.http_api.bodies import LoginBody, PasswordChangeBody, RefreshBody
from satchel.strategies.base import LoginContext
from satchel.transports.base import HeaderPairs, RawHeaders, header_values
from satchel.transports.client_ip import IPNetwork, client_ip
from satchel.transports.csrf import FORM_FIELD, content_type, scope_origin

logger = logging.getLogger("satchel.integrations")

MAX_USER_AGENT: Final = 512
MAX_FORM_FIELDS: Final = 20
FORM_TYPES: Final = frozenset({"application/x-www-form-urlencoded", "multipart/form-data"})
#: Headers of every response that carries a credential.
NO_STORE: Final[tuple[tuple[str, str], ...]] = (
    ("cache-control", "no-store"),
    ("pragma", "no-cache"),
)
_TRUE_WORDS: Final = frozenset({"1", "true", "on", "yes"})

#: The ``error`` code of an HTTP status without a more specific one.
CODES_BY_STATUS: Final[Mapping[int, str]] = {
    400: "invalid_request",
    401: "not_authenticated",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    406: "not_acceptable",
    409: "conflict",
    413: "payload_too_large",
    415: "unsupported_media_type",
    422: "invalid_request",
    429: "too_many_requests",
    500: "internal_error",
    503: "service_unavailable",
}


class UnsupportedMediaType(SatchelError):
    """Send the credentials as JSON or as a form."""

    code = "unsupported_media_type"
    status = 415


class InvalidFields(InvalidInput):
    """The body parsed, but a field is missing, of the wrong type or out of bounds (422)."""

    status = 422


# --- bodies ------------------------------------------------------------------------------------


def describe_errors(errors: Sequence[Mapping[str, Any]]) -> str:
    """A short account of what was wrong with the request, without echoing any input."""
    parts = []
    for error in errors[:5]:
        loc = ".".join(str(p) for p in error.get("loc", ()) if p not in ("body", "query"))
        msg = str(error.get("msg", "invalid value")).removeprefix("Value error, ")
        parts.append(f"{loc}: {msg}" if loc else msg)
    return "; ".join(parts) or "The request is not valid."


def validate(model: type[BaseModel], data: Mapping[str, Any]) -> Any:
    """``model`` from ``data``, or :class:`InvalidFields` (422) naming what was wrong."""
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise InvalidFields(describe_errors(exc.errors(include_input=False))) from None


# --- the request ------------------------------------------------------------------------------


@dataclass(slots=True, repr=False)
class ApiRequest:
    """One API request as the shared routes see it.

    ``headers`` are raw ``(name, value)`` byte pairs with lower-case names; ``form`` holds
    the first value of each field of a form body, parsed by the framework (a value that is
    not a ``str`` is an uploaded file); ``identity``, ``transport`` and ``error`` are what
    authenticating the request found; ``params`` are the path parameters; ``own_origin``
    is the origin the request was addressed to when the framework knows it better than the
    ``Host`` header (Django's ``get_host()`` checks ``ALLOWED_HOSTS``); ``repeated`` names
    the form fields sent more than once.
    """

    method: str
    path: str
    headers: RawHeaders
    scheme: str = "http"
    peer: str | None = None
    body: bytes = b""
    form: Mapping[str, object] | None = None
    identity: Identity | None = None
    transport: str | None = None
    error: SatchelError | None = None
    params: Mapping[str, str] = field(default_factory=dict)
    own_origin: str | None = None
    repeated: frozenset[str] = frozenset()

    def __repr__(self) -> str:
        return f"ApiRequest({self.method} {self.path})"

    @property
    def content_type(self) -> str:
        """The body's media type, lower-cased without parameters ("" when absent)."""
        return content_type(self.headers) or ""

    @property
    def origin(self) -> str | None:
        """The origin the request was addressed to (``scheme://host[:port]``), if known."""
        if self.own_origin is not None:
            return self.own_origin
        return scope_origin({"scheme": self.scheme, "headers": self.headers})

    def header(self, name: bytes) -> str | None:
        """The first value of header ``name`` (lower-case bytes), decoded as Latin-1."""
        values = header_values(self.headers, name)
        return values[0].decode("latin-1") if values else None


def is_json(ctype: str) -> bool:
    """True for ``application/json`` and its ``+json`` variants."""
    return ctype == "application/json" or ctype.endswith("+json")


def parse_json_object(raw: bytes) -> dict[str, Any]:
    """A JSON object body; InvalidInput (400) for anything else."""
    try:
        data = json.loads(raw)
    except (ValueError, RecursionError):
        raise InvalidInput("The request body is not valid JSON.") from None
    if not isinstance(data, dict):
        raise InvalidInput("The request body must be a JSON object.")
    return data


def form_fields(
    request: ApiRequest, names: Iterable[str], *, files: bool = False
) -> dict[str, Any]:
    """The fields ``names`` of a form body: text, or InvalidInput for an uploaded file
    (``files=True`` hands files back for the caller to refuse in its own words)."""
    form = request.form or {}
    if len(form) > MAX_FORM_FIELDS:
        raise InvalidInput(f"Too many fields. Maximum number of fields is {MAX_FORM_FIELDS}.")
    out: dict[str, Any] = {}
    for key in names:
        value = form.get(key)
        if value is None:
            continue
        if not isinstance(value, str) and not files:
            raise InvalidInput(f"The field {key!r} must be text.")
        out[key] = value
    return out


def read_login_body(request: ApiRequest) -> tuple[LoginBody, str | None]:
    """Username, password and "remember me" from a JSON or a form body, and the form's
    ``csrf_token`` field (None for JSON, which needs no token)."""
    ctype = request.content_type
    data: dict[str, Any]
    form_token: str | None = None
    if is_json(ctype):
        data = parse_json_object(request.body)
    elif ctype in FORM_TYPES:
        data = dict(form_fields(request, ("username", "password", "remember", FORM_FIELD)))
        form_token = data.pop(FORM_FIELD, None)
        if "remember" in data:
            data["remember"] = str(data["remember"]).lower() in _TRUE_WORDS
    else:
        raise UnsupportedMediaType()
    body: LoginBody = validate(LoginBody, data)
    return body, form_token


def read_json_body(request: ApiRequest) -> dict[str, Any]:
    """A JSON object body (an empty body reads as ``{}``)."""
    return parse_json_object(request.body) if request.body.strip() else {}


def login_context(
    request: ApiRequest, proxies: Sequence[IPNetwork] = (), remember: bool = False
) -> LoginContext:
    """Client facts for a new session: the client address and a bounded User-Agent.

    ``X-Forwarded-For`` counts only when the peer is one of ``proxies``: the address keys
    the per-IP login throttle, so a client must not be able to choose it.
    """
    ip = client_ip(request.peer, request.headers, proxies)
    agent = request.header(b"user-agent")
    if agent is not None:
        agent = agent[:MAX_USER_AGENT]
    return LoginContext(ip=ip, user_agent=agent, remember=remember)


# --- the response -----------------------------------------------------------------------------


@dataclass(slots=True, repr=False)
class ApiResponse:
    """Status, a JSON-able body (None: no body) and the headers to send."""

    status: int
    body: Any = None
    headers: HeaderPairs = field(default_factory=list)

    def __repr__(self) -> str:
        return f"ApiResponse({self.status})"

    def content(self) -> bytes:
        """The encoded body (empty when there is none)."""
        if self.body is None:
            return b""
        return json.dumps(self.body, separators=(",", ":")).encode()

    def add(self, headers: Iterable[tuple[str, str]]) -> ApiResponse:
        """Add ``headers``, keeping a Cache-Control already there; returns self."""
        present = any(name.lower() == "cache-control" for name, _ in self.headers)
        for name, value in headers:
            if name.lower() == "cache-control" and present:
                continue
            present = present or name.lower() == "cache-control"
            self.headers.append((name, value))
        return self


def error_response(
    status: int, code: str, detail: str, headers: Iterable[tuple[str, str]] = ()
) -> ApiResponse:
    """The ``{"error": code, "detail": text}`` response every error uses."""
    response = ApiResponse(
        status, {"error": code, "detail": detail}, [("cache-control", "no-store")]
    )
    response.headers.extend(headers)
    return response


def satchel_error_response(
    auth: Auth | None, error: SatchelError, transport: str | None = None
) -> ApiResponse:
    """``error`` as JSON with its status, plus Retry-After (429, 503) or the transports'
    challenge headers (401)."""
    # An error's own headers first: a step-up challenge (RFC 9470) replaces the transports'.
    headers: HeaderPairs = list(error.response_headers())
    if not headers and isinstance(error, Throttled | StoreUnavailable):
        headers.append(("retry-after", str(error.retry_after)))
    elif not headers and isinstance(error, AuthenticationError) and auth is not None:
        headers.extend(challenge_headers(auth, transport, error))
    response = error_response(error.status, error.code, error.detail, headers)
    fields = error.body_fields()  # mfa_required's mfa_token and methods
    if fields and isinstance(response.body, dict):
        response.body = {**fields, **response.body}
    return response


def http_error_response(status: int, detail: str | None = None) -> ApiResponse:
    """A framework's own HTTP error (404, 405, 413...) in the same shape."""
    code = CODES_BY_STATUS.get(status, "http_error")
    try:
        phrase = HTTPStatus(status).phrase
    except ValueError:
        phrase = "Error"
    return error_response(status, code, detail or phrase)


def internal_error_response(error: BaseException, where: str) -> ApiResponse:
    """500 ``internal_error``; the trace goes to the server log only."""
    logger.error("unhandled %s on %s", type(error).__name__, where, exc_info=error)
    return error_response(500, "internal_error", "Internal server error.")


__all__ = [
    "CODES_BY_STATUS",
    "FORM_TYPES",
    "MAX_FORM_FIELDS",
    "NO_STORE",
    "ApiRequest",
    "ApiResponse",
    "InvalidFields",
    "LoginBody",
    "PasswordChangeBody",
    "RefreshBody",
    "UnsupportedMediaType",
    "describe_errors",
    "error_response",
    "form_fields",
    "http_error_response",
    "internal_error_response",
    "is_json",
    "json_body",
    "login_context",
    "parse_json_object",
    "read_json_body",
    "read_login_body",
    "satchel_error_response",
    "validate",
]
