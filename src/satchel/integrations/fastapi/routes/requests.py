"""Reading API requests: the client facts a login records, and a login body that may be
JSON or a form."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, Final

from fastapi import Request, Response
from fastapi.exceptions import RequestValidationError
from pydantic import ValidationError
from starlette.datastructures import UploadFile

from satchel.errors import InvalidInput
from satchel.integrations.fastapi.deps import server_settings
from satchel.integrations.fastapi.routes.models import LoginBody

# The body rules every framework shares (satchel.integrations.http_api), re-exported here.
from satchel.integrations.http_api.messages import (
    FORM_TYPES,
    MAX_FORM_FIELDS,
    MAX_USER_AGENT,
    UnsupportedMediaType,
    is_json,
    parse_json_object,
)
from satchel.strategies.base import LoginContext
from satchel.transports.client_ip import client_ip, parse_networks
from satchel.transports.csrf import FORM_FIELD

#: Headers of every response that carries a credential.
NO_STORE: Final = {"Cache-Control": "no-store", "Pragma": "no-cache"}
_TRUE_WORDS: Final = frozenset({"1", "true", "on", "yes"})


def login_context(
    request: Request, remember: bool = False, transport: str | None = None
) -> LoginContext:
    """Client facts for a new session: the client address and a bounded User-Agent.

    ``X-Forwarded-For`` counts only when the peer is one of ``settings.trusted_proxies``
    (``client_ip``): the address keys the per-IP login throttle, so a
    client must not be able to choose it.
    """
    client = request.scope.get("client")
    peer = str(client[0]) if client else None
    proxies = parse_networks(server_settings(request).trusted_proxies)
    ip = client_ip(peer, request.scope.get("headers") or (), proxies)
    agent = request.headers.get("user-agent")
    if agent is not None:
        agent = agent[:MAX_USER_AGENT]
    return LoginContext(ip=ip, user_agent=agent, remember=remember, transport=transport)


async def read_login_body(request: Request) -> tuple[LoginBody, str | None]:
    """Username, password and "remember me" from a JSON or a form body, and the form's
    ``csrf_token`` field (None for JSON, which needs no token)."""
    ctype = request.headers.get("content-type", "").split(";", 1)[0].strip().lower()
    data: dict[str, Any]
    form_token: str | None = None
    if is_json(ctype):
        data = parse_json_object(await request.body())
    elif ctype in FORM_TYPES:
        form = await request.form(max_files=0, max_fields=MAX_FORM_FIELDS)
        data = {}
        for key in ("username", "password", "remember", FORM_FIELD):
            value = form.get(key)
            if isinstance(value, UploadFile):
                raise InvalidInput(f"The field {key!r} must be text.")
            if value is not None:
                data[key] = value
        form_token = data.pop(FORM_FIELD, None)
        if "remember" in data:
            data["remember"] = str(data["remember"]).lower() in _TRUE_WORDS
    else:
        raise UnsupportedMediaType()
    try:
        return LoginBody.model_validate(data), form_token
    except ValidationError as exc:
        raise RequestValidationError(exc.errors(include_input=False)) from None


def apply_headers(response: Response, headers: Iterable[tuple[str, str]]) -> None:
    """Add ``headers`` to ``response``, keeping a Cache-Control it already has."""
    for name, value in headers:
        if name.lower() == "cache-control" and "cache-control" in response.headers:
            continue
        response.headers.append(name, value)


__all__ = [
    "FORM_TYPES",
    "MAX_FORM_FIELDS",
    "MAX_USER_AGENT",
    "NO_STORE",
    "UnsupportedMediaType",
    "apply_headers",
    "is_json",
    "login_context",
    "parse_json_object",
    "read_login_body",
]
