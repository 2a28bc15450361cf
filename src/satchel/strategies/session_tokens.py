"""Opaque session tokens: ``<id>.<secret>``.

The id is the public handle of a session (shown in "my devices", safe to log as a handle);
the secret is the credential. Only SHA-256 of the secret is stored: the secret carries
256 bits from :mod:`secrets`, so a fast hash is enough (ASVS 6.5.2) and a leaked store
cannot be replayed as cookies.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets

from satchel.errors import InvalidCredential

#: Random bytes behind the public id (128 bits) and the secret (256 bits).
ID_BYTES = 16
SECRET_BYTES = 32
#: Lengths of their unpadded base64url forms.
ID_LENGTH = 22
SECRET_LENGTH = 43
TOKEN_LENGTH = ID_LENGTH + 1 + SECRET_LENGTH

# Exact shape, checked before any store query: nothing else can reach a backend (S10).
_ID_RE = re.compile(rf"[A-Za-z0-9_-]{{{ID_LENGTH}}}")
_TOKEN_RE = re.compile(rf"([A-Za-z0-9_-]{{{ID_LENGTH}}})\.([A-Za-z0-9_-]{{{SECRET_LENGTH}}})")

_MALFORMED = "Malformed session token."


def new_session_id() -> str:
    """A fresh public session handle (128 random bits, unpadded base64url).

    Never one that starts with ``-``: handles are typed as command-line arguments
    (``satchel sessions revoke ID``), where a leading dash reads as an option. Redrawing
    1 in 64 ids costs nothing a handle needs (it is not the secret).
    """
    while True:
        sid = secrets.token_urlsafe(ID_BYTES)
        if sid[0] != "-":
            return sid


def new_token() -> tuple[str, str, str]:
    """A fresh ``(session_id, secret, token)``; the token is what the client holds."""
    sid = new_session_id()
    secret = secrets.token_urlsafe(SECRET_BYTES)
    return sid, secret, f"{sid}.{secret}"


def split_token(token: str) -> tuple[str, str]:
    """``(session_id, secret)`` of a well-formed token; :class:`InvalidCredential` otherwise.

    Accepts exactly ``[A-Za-z0-9_-]{22}.[A-Za-z0-9_-]{43}`` (ASCII only: ``re``'s classes
    are written out, so no Unicode digit or letter slips through).
    """
    if not isinstance(token, str) or len(token) != TOKEN_LENGTH:
        raise InvalidCredential(_MALFORMED)
    match = _TOKEN_RE.fullmatch(token)
    if match is None:
        raise InvalidCredential(_MALFORMED)
    return match.group(1), match.group(2)


def is_session_id(value: str) -> bool:
    """True when ``value`` has the exact shape of a session id (for admin/API inputs)."""
    return isinstance(value, str) and len(value) == ID_LENGTH and bool(_ID_RE.fullmatch(value))


def hash_secret(secret: str) -> bytes:
    """SHA-256 of the secret half, the only form that is stored."""
    return hashlib.sha256(secret.encode("ascii")).digest()


def secret_matches(stored_hash: bytes, secret: str) -> bool:
    """Constant-time comparison of ``secret`` against a stored hash."""
    return hmac.compare_digest(stored_hash, hash_secret(secret))
