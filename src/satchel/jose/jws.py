"""A strict JWS compact-serialization layer (RFC 7515) for satchel's own tokens.

Only the profile satchel issues is accepted, and everything else is refused before any
key is used:

* at most :data:`MAX_TOKEN_LENGTH` characters, checked before any decoding (J22);
* exactly three non-empty segments of the base64url alphabet ``[A-Za-z0-9_-]``, without
  padding and in canonical form — unused trailing bits must be zero (J18, J19);
* header and payload are UTF-8 JSON objects without duplicate members, ``NaN`` /
  ``Infinity``, oversized numbers or pathological nesting (J11, J17, J22, J23);
* the header must name a known ``kid``; its ``alg`` must equal that key's algorithm
  exactly — the header never selects an algorithm, and ``none`` matches no key (J01–J06);
* ``crit``, ``b64``, key-carrying or key-fetching members (``jku``, ``x5u``, ``jwk``,
  ``x5c``, ``x5t``…) and JWE members are refused; nothing is ever fetched (J07, J08,
  J15, J16).

Errors are :class:`satchel.errors.InvalidToken` with a short detail that never quotes the
token.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping
from typing import Any

from satchel.errors import ConfigurationError, InvalidToken
from satchel.jose import b64
from satchel.jose.b64 import encode as b64url_encode
from satchel.jose.jwk import MAX_KID_LENGTH, SigningKey
from satchel.jose.keyset import KeySet

#: Longest token accepted, in characters; checked before anything else.
MAX_TOKEN_LENGTH = 8 * 1024
# Integer literals longer than this are refused before int() sees them (J11, J22).
_MAX_INT_DIGITS = 20
_MAX_FLOAT_CHARS = 40

#: Header members refused outright: extensions we do not implement and key references
#: that must never be trusted or fetched.
FORBIDDEN_HEADERS = frozenset(
    {
        "crit",
        "b64",
        "jku",
        "x5u",
        "jwk",
        "x5c",
        "x5t",
        "x5t#S256",
        # JWE members: an encrypted token is not a JWS.
        "enc",
        "zip",
        "epk",
        "apu",
        "apv",
        "iv",
        "tag",
        "p2s",
        "p2c",
    }
)

_TOKEN_RE = re.compile(r"([A-Za-z0-9_-]+)\.([A-Za-z0-9_-]+)\.([A-Za-z0-9_-]+)")


#: Parsed headers of tokens whose signature verified, by their encoded header segment.
_verified_headers: dict[str, dict[str, Any]] = {}
_HEADER_CACHE_SIZE = 64


class UnknownKey(InvalidToken):
    """The token names a key id this key set does not hold (or no longer accepts)."""


class _Malformed(ValueError):
    pass


def _pairs(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    obj = dict(pairs)
    if len(obj) != len(pairs):
        raise _Malformed("duplicate member")
    return obj


def _constant(name: str) -> Any:
    raise _Malformed("non-finite number")


def _int(text: str) -> int:
    if len(text) > _MAX_INT_DIGITS:
        raise _Malformed("number too large")
    return int(text)


def _float(text: str) -> float:
    value = float(text) if len(text) <= _MAX_FLOAT_CHARS else math.inf
    if not math.isfinite(value):
        raise _Malformed("number out of range")
    return value


_DECODER = json.JSONDecoder(
    object_pairs_hook=_pairs,
    parse_constant=_constant,
    parse_int=_int,
    parse_float=_float,
)
_decode_json = _DECODER.decode


def _segment(segment: bytes, last: str, what: str) -> bytes:
    try:
        return b64.decode_standard(segment, last)
    except ValueError:
        raise InvalidToken(f"Malformed token {what}.") from None


def _object(data: bytes, what: str) -> dict[str, Any]:
    try:
        # Decoding as UTF-8 first: json.loads(bytes) would also accept UTF-16/32 (J23).
        value = _decode_json(data.decode("utf-8"))
    except (ValueError, RecursionError):
        raise InvalidToken(f"Malformed token {what}.") from None
    if type(value) is not dict:
        raise InvalidToken(f"Token {what} is not a JSON object.")
    return value


def decode_raw(token: object, keyset: KeySet, now: float) -> tuple[dict[str, Any], bytes]:
    """Verify ``token`` and return its header and raw payload bytes.

    Raises :class:`InvalidToken` (:class:`UnknownKey` for an unknown or expired ``kid``).
    """
    if type(token) is not str:
        raise InvalidToken("Token must be text.")
    if len(token) > MAX_TOKEN_LENGTH:
        raise InvalidToken("Token too long.")
    match = _TOKEN_RE.fullmatch(token)
    if match is None:
        raise InvalidToken("Malformed token.")
    # One translation of the whole token into the standard base64 alphabet, then slices.
    end_header, end_payload = match.end(1), match.end(2)
    raw = token.encode("ascii")
    std = raw.translate(b64.TO_STANDARD)
    segment = token[:end_header]
    known = _verified_headers.get(segment)
    if known is not None:
        header = dict(known)
    else:
        header = _object(_segment(std[:end_header], token[end_header - 1], "header"), "header")
    if not FORBIDDEN_HEADERS.isdisjoint(header):
        raise InvalidToken("Token header carries an unsupported member.")
    kid = header.get("kid")
    if type(kid) is not str or not kid or len(kid) > MAX_KID_LENGTH:
        raise InvalidToken("Token header needs a valid kid.")
    key = keyset.get(kid, now)
    if key is None:
        raise UnknownKey("Token signed by an unknown key.")
    # Exact comparison: no case folding, no trimming, no aliases (J05).
    if header.get("alg") != key.alg:
        raise InvalidToken("Token algorithm does not match its key.")
    signature = _segment(std[end_payload + 1 :], token[-1], "signature")
    if not key.verify(raw[:end_payload], signature):
        raise InvalidToken("Token signature is invalid.")
    if known is None:
        # Every token of one key shares its header; parsing it is a third of a first-seen
        # verify. Only headers under a valid signature go in, so no one else can fill this.
        if len(_verified_headers) >= _HEADER_CACHE_SIZE:
            _verified_headers.clear()
        _verified_headers[segment] = dict(header)
    return header, _segment(std[end_header + 1 : end_payload], token[end_payload - 1], "payload")


def split_unverified(
    token: object, max_length: int = MAX_TOKEN_LENGTH
) -> tuple[dict[str, Any], dict[str, Any], bytes, bytes]:
    """Header, payload, signing input and signature of a compact JWS, **not verified**.

    The same strict parsing as :func:`decode` (canonical base64url, strict JSON objects),
    for JWS whose key travels in the header (a DPoP proof, :mod:`satchel.dpop.proof`): the
    caller checks the header, picks the key and verifies the signature itself.
    """
    if type(token) is not str:
        raise InvalidToken("Token must be text.")
    if len(token) > max_length:
        raise InvalidToken("Token too long.")
    match = _TOKEN_RE.fullmatch(token)
    if match is None:
        raise InvalidToken("Malformed token.")
    end_header, end_payload = match.end(1), match.end(2)
    raw = token.encode("ascii")
    std = raw.translate(b64.TO_STANDARD)
    header = _object(_segment(std[:end_header], token[end_header - 1], "header"), "header")
    payload_bytes = _segment(std[end_header + 1 : end_payload], token[end_payload - 1], "payload")
    signature = _segment(std[end_payload + 1 :], token[-1], "signature")
    return header, _object(payload_bytes, "payload"), raw[:end_payload], signature


def decode(token: object, keyset: KeySet, now: float) -> tuple[dict[str, Any], dict[str, Any]]:
    """Verify ``token`` and return its header and its JSON-object payload.

    The payload is parsed only after the signature checked out. Claims are not
    validated here; see :func:`satchel.jose.claims.verify`.
    """
    header, payload = decode_raw(token, keyset, now)
    return header, _object(payload, "payload")


def _dumps(value: Mapping[str, Any]) -> bytes:
    try:
        return json.dumps(value, separators=(",", ":"), allow_nan=False).encode("ascii")
    except (TypeError, ValueError) as exc:
        raise ConfigurationError(f"Token content is not JSON-serialisable: {exc}") from None


def encode(
    header_extra: Mapping[str, Any] | None,
    payload: bytes | Mapping[str, Any],
    key: SigningKey,
) -> str:
    """A compact JWS of ``payload`` signed by ``key``.

    ``alg`` and ``kid`` always come from ``key``; ``header_extra`` (e.g. ``typ``) may not
    override them or add a member that :func:`decode` refuses.
    """
    header: dict[str, Any] = {"alg": key.alg, "kid": key.kid}
    for name, value in (header_extra or {}).items():
        if name in header or name in FORBIDDEN_HEADERS:
            raise ConfigurationError(f"Header member {name!r} cannot be set.")
        header[name] = value
    body = payload if isinstance(payload, bytes | bytearray) else _dumps(payload)
    signing_input = f"{b64url_encode(_dumps(header))}.{b64url_encode(bytes(body))}"
    token = f"{signing_input}.{b64url_encode(key.sign(signing_input.encode('ascii')))}"
    if len(token) > MAX_TOKEN_LENGTH:
        raise ConfigurationError("Token would exceed the maximum token length.")
    return token
