"""The DBSC header fields (draft dbsc-1): writing the server's, reading the browser's.

Every field is an RFC 9651 structured field, but only a small profile of one ever carries
what satchel sends or accepts: tokens (algorithm names) and strings whose characters are
limited to the base64url alphabet and a few URL characters, so serialising never needs an
escape. Reading is as strict: a request field must be one sf-string (``"..."``) of that
alphabet, its parameters ignored as the draft says; the bare spelling of older drafts'
examples (``Sec-Secure-Session-Id: abc``) is accepted too. Anything else is refused, never
guessed at.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Final

from satchel.dbsc.errors import InvalidProof
from satchel.errors import ConfigurationError, InvalidInput
from satchel.transports.base import RawHeaders, header_values

#: Signature algorithms a session key may use (the draft also has ``none``: never offered).
ALGORITHMS: Final = ("ES256", "RS256")

REGISTRATION: Final = "Secure-Session-Registration"
CHALLENGE: Final = "Secure-Session-Challenge"
RESPONSE: Final = b"secure-session-response"
SESSION_ID: Final = b"sec-secure-session-id"
SKIPPED: Final = b"secure-session-skipped"

#: Longest proof accepted (a 4096-bit RSA JWK and signature fit well within it).
MAX_PROOF: Final = 8 * 1024
MAX_SESSION_ID: Final = 256

# What a string we write may hold: nothing that needs an escape (no '"' or '\').
_WRITABLE = re.compile(r"[A-Za-z0-9_\-./:~%]+")
_JWT = re.compile(r"[A-Za-z0-9_\-.]+")
_SESSION = re.compile(r"[A-Za-z0-9_\-.]+")
_TOKENS = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z:/]+")
_SKIP_REASONS: Final = frozenset({"unreachable", "server_error", "quota_exceeded"})


def sf_string(value: str) -> str:
    """``value`` as an sf-string; only the escape-free alphabet we ever send is allowed."""
    if not _WRITABLE.fullmatch(value):
        raise ConfigurationError("DBSC header values must be URL-safe text.")
    return f'"{value}"'


def registration_header(
    path: str, challenge: str, algorithms: Sequence[str] = ALGORITHMS
) -> tuple[str, str]:
    """``Secure-Session-Registration: (ES256 RS256);path="...";challenge="..."``."""
    if not algorithms or any(alg not in ALGORITHMS for alg in algorithms):
        raise ConfigurationError("DBSC algorithms must be ES256 and/or RS256.")
    value = f"({' '.join(algorithms)});path={sf_string(path)};challenge={sf_string(challenge)}"
    return (REGISTRATION, value)


def challenge_header(challenge: str, session_id: str) -> tuple[str, str]:
    """``Secure-Session-Challenge: "<challenge>";id="<session id>"``."""
    return (CHALLENGE, f"{sf_string(challenge)};id={sf_string(session_id)}")


def _one_string(headers: RawHeaders, name: bytes, limit: int, alphabet: re.Pattern[str]) -> str:
    values = header_values(headers, name)
    if len(values) != 1:
        raise InvalidInput(f"Send exactly one {name.decode()} header.")
    raw = values[0].strip(b" \t")
    if len(raw) > limit + 2:
        raise InvalidInput(f"The {name.decode()} header is too long.")
    try:
        text = raw.decode("ascii")
    except UnicodeDecodeError:
        raise InvalidInput(f"Malformed {name.decode()} header.") from None
    if text.startswith('"'):
        end = text.find('"', 1)
        rest = text[end + 1 :] if end > 0 else "!"
        if rest and not rest.startswith(";"):  # parameters may follow; nothing else
            raise InvalidInput(f"Malformed {name.decode()} header.")
        text = text[1:end]
    elif ";" in text:
        text = text.split(";", 1)[0]
    if not text or len(text) > limit or not alphabet.fullmatch(text):
        raise InvalidInput(f"Malformed {name.decode()} header.")
    return text


def read_proof(headers: RawHeaders) -> str | None:
    """The proof JWT of ``Secure-Session-Response``; None when the request has none."""
    if not header_values(headers, RESPONSE):
        return None
    try:
        return _one_string(headers, RESPONSE, MAX_PROOF, _JWT)
    except InvalidInput as exc:
        raise InvalidProof(exc.detail) from None


def read_session_id(headers: RawHeaders) -> str | None:
    """The session identifier of ``Sec-Secure-Session-Id``; None when absent."""
    if not header_values(headers, SESSION_ID):
        return None
    return _one_string(headers, SESSION_ID, MAX_SESSION_ID, _SESSION)


def skipped_reasons(headers: RawHeaders) -> list[str]:
    """The reasons a browser gives in ``Secure-Session-Skipped`` for sending a request
    without the bound cookie (``unreachable``, ``server_error``, ``quota_exceeded``), for
    the audit log; unknown tokens read as ``other``."""
    reasons: list[str] = []
    for value in header_values(headers, SKIPPED):
        for item in value.decode("latin-1").split(","):
            token = item.split(";", 1)[0].strip()
            if token and _TOKENS.fullmatch(token):
                reasons.append(token if token in _SKIP_REASONS else "other")
    return reasons[:8]
