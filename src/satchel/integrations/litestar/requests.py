"""Reading the JSON API's requests on Litestar: client facts for a login, and bodies that
may be JSON or a form. Every malformed body is a 400/415/422 JSON error, never a 500."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any, Final

from litestar import Request

from satchel.errors import InvalidInput, SatchelError
from satchel.strategies.base import LoginContext
from satchel.transports.client_ip import IPNetwork, client_ip
from satchel.transports.csrf import FORM_FIELD, content_type

MAX_USER_AGENT: Final = 512
FORM_TYPES: Final = frozenset({"application/x-www-form-urlencoded", "multipart/form-data"})
_TRUE_WORDS: Final = frozenset({"1", "true", "on", "yes"})

AnyRequest = Request[Any, Any, Any]


class UnsupportedMediaType(SatchelError):
    """Send the credentials as JSON or as a form."""

    code = "unsupported_media_type"
    status = 415


class InvalidFields(SatchelError):
    """A body whose fields are missing or of the wrong type (422, as the reference API)."""

    code = "invalid_request"
    status = 422


def login_context(
    request: AnyRequest, proxies: tuple[IPNetwork, ...], remember: bool = False
) -> LoginContext:
    """Client facts for a new session: the address (``X-Forwarded-For`` only from a trusted
    proxy, since it keys the login throttle) and a bounded User-Agent."""
    scope: Any = request.scope
    client = scope.get("client")
    peer = str(client[0]) if client else None
    ip = client_ip(peer, scope.get("headers") or (), proxies)
    agent = request.headers.get("user-agent")
    agent = agent[:MAX_USER_AGENT] if agent else None
    return LoginContext(ip=ip, user_agent=agent, remember=remember)


def media_type(request: AnyRequest) -> str:
    scope: Any = request.scope
    return content_type(scope.get("headers") or ()) or ""


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


async def form_fields(request: AnyRequest, names: tuple[str, ...]) -> dict[str, str]:
    """The text fields ``names`` of a form body (a file where text belongs is refused)."""
    form = await request.form()
    out: dict[str, str] = {}
    for key in names:
        value = form.get(key)
        if value is None:
            continue
        if not isinstance(value, str):
            raise InvalidInput(f"The field {key!r} must be text.")
        out[key] = value
    return out


def text_field(data: Mapping[str, Any], name: str, *, max_length: int, min_length: int = 0) -> str:
    """``data[name]`` as a string of a bounded length, else 422 naming the field."""
    value = data.get(name)
    if value is None:
        raise InvalidFields(f"{name}: Field required")
    if not isinstance(value, str):
        raise InvalidFields(f"{name}: Input should be a valid string")
    if not min_length <= len(value) <= max_length:
        raise InvalidFields(f"{name}: length must be {min_length} to {max_length} characters")
    return value


async def read_login_body(request: AnyRequest) -> tuple[str, str, bool, str | None]:
    """Username, password, "remember me" and the form's ``csrf_token`` (None for JSON)."""
    ctype = media_type(request)
    form_token: str | None = None
    data: dict[str, Any]
    if is_json(ctype):
        data = parse_json_object(await request.body())
    elif ctype in FORM_TYPES:
        fields = await form_fields(request, ("username", "password", "remember", FORM_FIELD))
        form_token = fields.pop(FORM_FIELD, None)
        data = dict(fields)
        if "remember" in data:
            data["remember"] = data["remember"].lower() in _TRUE_WORDS
    else:
        raise UnsupportedMediaType("Send the credentials as JSON or as a form.")
    username = text_field(data, "username", max_length=1024)
    password = text_field(data, "password", max_length=1 << 20)
    remember = data.get("remember", False)
    if not isinstance(remember, bool):
        raise InvalidFields("remember: Input should be a valid boolean")
    return username, password, remember, form_token


async def read_token_form(request: AnyRequest) -> tuple[str, str]:
    """``POST /auth/token``: the OAuth 2.0 password grant's form fields."""
    data: dict[str, str] = {}
    if media_type(request) in FORM_TYPES:
        data = await form_fields(request, ("username", "password", "grant_type"))
    grant = data.get("grant_type")
    if grant is not None and grant != "password":
        raise InvalidFields("grant_type: String should match pattern '^password$'")
    return (
        text_field(data, "username", min_length=1, max_length=1024),
        text_field(data, "password", max_length=4096),
    )


async def read_body_field(request: AnyRequest, name: str) -> object:
    """Field ``name`` of a JSON object or form body; None when absent or there is no body."""
    ctype = media_type(request)
    if is_json(ctype):
        raw = await request.body()
        return parse_json_object(raw).get(name) if raw.strip() else None
    if ctype in FORM_TYPES:
        return (await form_fields(request, (name,))).get(name)
    return None


async def read_password_change(request: AnyRequest) -> tuple[str, str]:
    """``POST /auth/password``: a JSON object with exactly the two password fields."""
    if not is_json(media_type(request)):
        raise UnsupportedMediaType("Send the passwords as a JSON object.")
    data = parse_json_object(await request.body())
    extra = sorted(set(data) - {"current_password", "new_password"})
    if extra:
        raise InvalidFields(f"{extra[0]}: Extra inputs are not permitted")
    return (
        text_field(data, "current_password", max_length=1 << 20),
        text_field(data, "new_password", max_length=1 << 20),
    )
