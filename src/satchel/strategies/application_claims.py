"""Application claims: what an account adds to every identity and token of its user.

They are ``UserRecord.claims`` (for example ``{"tenant_id": 7}``) plus ``"email"`` from
``UserRecord.email`` when the account has one. Every strategy puts them on
``Identity.claims``; the jwt and hybrid strategies also sign them into each access token as
top-level JWT claims, so :mod:`satchel.verify` in another service sees them too. They are
checked by :func:`application_claims` every time they are put on an identity or into a
token (login, refresh and, for the session strategy, each read of the account), and a row
that breaks a rule is **refused** with :class:`~satchel.errors.ConfigurationError` naming the
claim — never silently dropped, because an application relying on a claim must not get a
credential without it:

* a name in :data:`RESERVED_CLAIMS` — JWT registered claims, OAuth access-token and OpenID
  Connect claims with a protocol meaning, and every claim satchel sets itself — can never be
  set: an application claim cannot override ``sub``, ``roles``, ``exp``, ``auth_time``...;
* names are non-empty strings of at most 256 characters;
* values are JSON: ``None``, booleans, integers of at most 20 characters, finite floats,
  strings (valid Unicode), lists and string-keyed objects of those, nested at most 8 deep.
  Tuples, sets, bytes, dates, NaN and other objects are refused;
* together, at most :data:`MAX_APPLICATION_CLAIMS_BYTES` bytes of JSON, so an access token
  still fits in a cookie.

Claims are not secrets: they are readable by anyone holding the token.
"""

from __future__ import annotations

import json
import logging
import math
from collections.abc import Mapping
from types import MappingProxyType
from typing import Any

from satchel.errors import ConfigurationError
from satchel.stores.base import UserRecord

# Pure, and free of satchel.jose on purpose: the session strategy loads with the core.

logger = logging.getLogger("satchel.strategies.claims")

#: Claim carrying the display username, so a request needs no user read for it.
USERNAME_CLAIM = "preferred_username"
#: Claim carrying the instant of the original authentication (the session's creation).
AUTH_TIME_CLAIM = "auth_time"
#: Claim carrying ``UserRecord.email``.
EMAIL_CLAIM = "email"

#: Names an application claim can never take.
RESERVED_CLAIMS = frozenset(
    {
        # RFC 7519 registered claims
        "iss",
        "sub",
        "aud",
        "exp",
        "nbf",
        "iat",
        "jti",
        # RFC 9068 access tokens, RFC 7643 via RFC 9068 §2.2.3.1, RFC 8693 delegation
        "client_id",
        "scope",
        "auth_time",
        "acr",
        "amr",
        "roles",
        "groups",
        "entitlements",
        "act",
        "may_act",
        # RFC 7800 proof of possession; OpenID Connect protocol claims
        "cnf",
        "azp",
        "nonce",
        "at_hash",
        "c_hash",
        "sid",
        # a media type some issuers put in the payload
        "typ",
        # set by satchel itself
        USERNAME_CLAIM,
        EMAIL_CLAIM,
    }
)
#: Largest JSON form of one account's application claims (email included), in bytes.
MAX_APPLICATION_CLAIMS_BYTES = 2048
_MAX_NAME = 256
_MAX_DEPTH = 8
_MAX_INT_CHARS = 20  # what the token parser accepts (satchel.jose.jws)
_NONE: Mapping[str, Any] = MappingProxyType({})
# The form and the size of a token's payload (satchel.jose.jws serialises the same way).
_ENCODE = json.JSONEncoder(separators=(",", ":"), allow_nan=False).encode


def application_claims(user: UserRecord) -> Mapping[str, Any]:
    """The checked application claims of ``user`` (see the module docstring).

    Raises :class:`ConfigurationError` naming the first claim that breaks a rule.
    """
    claims, email = user.claims, user.email
    if not claims and email is None:
        return _NONE
    if type(claims) is not dict:
        raise _refuse(user, "Application claims must be a JSON object.")
    out: dict[str, Any] = {}
    bound = 2  # an upper bound of the JSON size, so the common case needs no serialisation
    for name, value in claims.items():
        if type(name) is not str or not name or len(name) > _MAX_NAME or not _is_text(name):
            raise _refuse(user, "Application claim names must be strings of 1 to 256 characters.")
        if name in RESERVED_CLAIMS:
            raise _refuse(
                user,
                f"Application claim {name!r} is reserved (set by satchel or by the JWT "
                "standards) and cannot be overridden.",
            )
        size = _json_bound(value, 0)
        if size < 0:
            raise _refuse(
                user,
                f"Application claim {name!r} is not a JSON value (null, boolean, number, "
                "string, list or object with string keys).",
            )
        bound += _text_bound(name) + 2 + size
        out[name] = value
    if email is not None:
        if type(email) is not str or not email or len(email) > 320 or not _is_text(email):
            raise _refuse(user, "The account's email must be a non-empty string.")
        bound += 10 + _text_bound(email)
        out[EMAIL_CLAIM] = email
    if bound > MAX_APPLICATION_CLAIMS_BYTES and len(_ENCODE(out)) > MAX_APPLICATION_CLAIMS_BYTES:
        raise _refuse(
            user,
            f"Application claims exceed {MAX_APPLICATION_CLAIMS_BYTES} bytes of JSON.",
        )
    return out


def _refuse(user: UserRecord, detail: str) -> ConfigurationError:
    logger.warning("application claims of user %r refused: %s", user.id, detail)
    return ConfigurationError(detail)


def _is_text(value: str) -> bool:
    try:
        value.encode("utf-8")  # lone surrogates are not Unicode text
    except UnicodeEncodeError:
        return False
    return True


def _text_bound(value: str) -> int:
    # Quotes, and at worst a 12-character escape per character (an astral one as two \uXXXX).
    return 2 + 12 * len(value)


def _json_bound(value: object, depth: int) -> int:
    """An upper bound of the JSON size of ``value``; -1 when it is not a JSON value."""
    # type() rather than isinstance(): subclasses (IntEnum, OrderedDict...) are refused.
    if value is None or type(value) is bool:
        return 5
    if type(value) is int:
        size = len(str(value))
        return size if size <= _MAX_INT_CHARS else -1
    if type(value) is float:
        return 32 if math.isfinite(value) else -1
    if type(value) is str:
        return _text_bound(value) if _is_text(value) else -1
    if depth >= _MAX_DEPTH:
        return -1
    total = 2
    if type(value) is list:
        for item in value:
            size = _json_bound(item, depth + 1)
            if size < 0:
                return -1
            total += size + 1
        return total
    if type(value) is dict:
        for key, item in value.items():
            size = _json_bound(item, depth + 1)
            if type(key) is not str or size < 0 or not _is_text(key):
                return -1
            total += _text_bound(key) + 2 + size
        return total
    return -1
