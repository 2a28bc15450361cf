"""Reading API requests: the client facts a login records, and a login body that may be
JSON or a form."""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any, Final

from fastapi import Request, Response
from fastapi.exceptions import RequestValidationError
from pydantic import ValidationError
from starlette.datastructures import UploadFile

from satchel.errors import InvalidInput, SatchelError
from satchel.integrations.fastapi.deps import server_settings
from satchel.integrations.fastapi.routes.models import LoginBody
from satchel.strategies.base import LoginContext
from satchel.transports.client_ip import client_ip, parse_networks
from satchel.transports.csrf import FORM_FIELD

MAX_USER_AGENT: Final = 512
MAX_FORM_FIELDS: Final = 20
FORM_TYPES: Final = frozenset({"application/x-www-form-urlencoded", "multipart/form-data"})
#: Headers of every response that carries a credential.
NO_STORE: Final = {"Cache-Control": "no-store", "Pragma": "no-cache"}
_TRUE_WORDS: Final = frozenset({"1", "true", "on", "yes"})


class UnsupportedMediaType(SatchelError):
    """Send the credentials as JSON or as a form."""

    code = "unsupported_media_type"
    status = 415


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
