"""Opaque refresh tokens ``<sid>.<generation>.<secret>``: format, parsing, successors.

Pure arithmetic under one server pepper (no I/O, no clock). The secret is the unpadded
base64url of ``nonce || tag`` with ``tag = HMAC(pepper, "tag" | sid.gen.nonce)``, so a forged
token is refused before any store is asked, and only a token this server really issued can
trigger reuse detection. The successor's nonce is ``HMAC(pepper, "next" | token)``: every
request presenting the same token computes the same successor, which is what lets
concurrent refreshes within the grace window receive one successor, never two.

The store sees only SHA-256 of a whole token (:meth:`RefreshTokens.digest`).
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets

from satchel.errors import ConfigurationError, InvalidCredential
from satchel.jose import b64
from satchel.strategies.session_tokens import ID_LENGTH

#: Name of the refresh-token pepper in the :class:`~satchel.stores.base.KeyStore`.
PEPPER_NAME = "refresh-pepper"
#: Detail of every refusal that must not say which check failed.
UNKNOWN_REFRESH = "Unknown, expired or ended refresh token."

_NONCE_BYTES = 32
_TAG_BYTES = 16
_SECRET_LENGTH = 64  # base64url of nonce + tag, unpadded
_MAX_GENERATION = 10**9
_MAX_LENGTH = 140
_REFRESH_RE = re.compile(
    rf"([A-Za-z0-9_-]{{{ID_LENGTH}}})\.(0|[1-9][0-9]{{0,9}})\.([A-Za-z0-9_-]{{{_SECRET_LENGTH}}})"
)
_MALFORMED = "Malformed refresh token."


def is_refresh_token_shape(token: str) -> bool:
    """True when ``token`` has the exact shape of a satchel refresh token."""
    return len(token) <= _MAX_LENGTH and _REFRESH_RE.fullmatch(token) is not None


class RefreshTokens:
    """Refresh tokens under one pepper; see the module docstring for the format."""

    __slots__ = ("_pepper",)

    def __init__(self, pepper: bytes) -> None:
        if not isinstance(pepper, bytes) or len(pepper) < 32:
            raise ConfigurationError("The refresh-token pepper must be at least 32 bytes.")
        self._pepper = pepper

    def __repr__(self) -> str:
        return "RefreshTokens(<pepper>)"

    def _tag(self, sid: str, gen: int, nonce: bytes) -> bytes:
        message = b"tag\x00" + f"{sid}.{gen}.".encode("ascii") + nonce
        return hmac.digest(self._pepper, message, "sha256")[:_TAG_BYTES]

    def _build(self, sid: str, gen: int, nonce: bytes) -> str:
        return f"{sid}.{gen}.{b64.encode(nonce + self._tag(sid, gen, nonce))}"

    def first(self, sid: str) -> str:
        """A new random refresh token (generation 0) for session ``sid``."""
        return self._build(sid, 0, secrets.token_bytes(_NONCE_BYTES))

    def successor(self, token: str, sid: str, gen: int) -> str:
        """The one token that replaces ``token``: the same for every caller presenting it."""
        nonce = hmac.digest(self._pepper, b"next\x00" + token.encode("ascii"), "sha256")
        return self._build(sid, gen + 1, nonce[:_NONCE_BYTES])

    def parse(self, token: object) -> tuple[str, int]:
        """``(sid, generation)`` of a token this server issued; InvalidCredential otherwise."""
        if type(token) is not str or len(token) > _MAX_LENGTH:
            raise InvalidCredential(_MALFORMED)
        match = _REFRESH_RE.fullmatch(token)
        if match is None:
            raise InvalidCredential(_MALFORMED)
        sid, gen_text, secret = match.groups()
        gen = int(gen_text)
        if gen >= _MAX_GENERATION:
            raise InvalidCredential(_MALFORMED)
        try:
            # Canonical only: no second spelling of one token.
            raw = b64.decode(secret)
        except ValueError:
            raise InvalidCredential(_MALFORMED) from None
        nonce, tag = raw[:_NONCE_BYTES], raw[_NONCE_BYTES:]
        if not hmac.compare_digest(tag, self._tag(sid, gen, nonce)):
            raise InvalidCredential(UNKNOWN_REFRESH)
        return sid, gen

    @staticmethod
    def digest(token: str) -> bytes:
        """SHA-256 of the whole token: the only form the store ever sees."""
        return hashlib.sha256(token.encode("ascii")).digest()
