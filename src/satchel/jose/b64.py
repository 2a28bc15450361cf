"""Unpadded base64url (RFC 7515 §2, RFC 4648 §5): the one codec behind every parser.

Every credential satchel reads — JWS segments, JWKs, refresh tokens, CSRF tokens, stored
records — decodes through :func:`decode`, so there is one definition of "canonical": only the
URL-safe alphabet, no padding, no whitespace, and unused trailing bits zero. A second
spelling of the same bytes would let an attacker mint distinct-looking copies of one token
(cache keys, replay lists and deny lists compare text), so it is refused.
"""

from __future__ import annotations

import base64
import binascii
import re

__all__ = ["TO_STANDARD", "decode", "decode_standard", "encode", "is_canonical"]

_ALPHABET_RE = re.compile(r"[A-Za-z0-9_-]*")
_ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
#: Translation table from the URL-safe alphabet to the standard one (``-_`` → ``+/``).
TO_STANDARD = bytes.maketrans(b"-_", b"+/")
# Final characters whose unused low bits are zero: 2 trailing chars carry 4 spare bits,
# 3 trailing chars carry 2. Anything else is a non-canonical encoding of the same bytes.
_CANONICAL_LAST = {2: frozenset(_ALPHABET[::16]), 3: frozenset(_ALPHABET[::4])}
_PADDING = {0: b"", 2: b"==", 3: b"="}


def encode(data: bytes) -> str:
    """Unpadded base64url text of ``data``."""
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def decode_standard(segment: bytes, last: str) -> bytes:
    """Decode ``segment``, base64url already translated with :data:`TO_STANDARD`.

    ``last`` is the segment's final character as it was written, for the canonical check.
    The caller has matched the URL-safe alphabet; this is the fast path for JWS, which
    translates a whole token once. Raises ValueError for a non-canonical length or tail.
    """
    rem = len(segment) & 3
    if rem == 1 or (rem and last not in _CANONICAL_LAST[rem]):
        raise ValueError("non-canonical base64url")
    try:
        return binascii.a2b_base64(segment + _PADDING[rem], strict_mode=True)
    except binascii.Error:
        raise ValueError("not base64url") from None


def decode(text: str) -> bytes:
    """Decode canonical unpadded base64url text; ValueError for anything else."""
    if type(text) is not str or not _ALPHABET_RE.fullmatch(text):
        raise ValueError("not base64url")
    return decode_standard(text.encode("ascii").translate(TO_STANDARD), text[-1:])


def is_canonical(text: object) -> bool:
    """Whether ``text`` is canonical unpadded base64url (the empty string is)."""
    if type(text) is not str:
        return False
    try:
        decode(text)
    except ValueError:
        return False
    return True
