"""One-time tokens: the pure rules of links and codes sent by mail (no I/O).

- A link token is 256 random bits from :mod:`secrets` (43 URL-safe characters); a sign-in
  code is 6 random digits, only ever accepted together with the address it was sent to.
- Only a keyed hash is stored: HMAC-SHA256 under a server secret (the *pepper*, kept in the
  key store) over the token's kind and the token, so a store dump yields neither usable
  tokens nor, for the short codes, a table to brute-force offline; and a token of one
  kind is worthless as another.
- A password-reset token carries a fingerprint of the password hash it was issued against:
  any change of the password ends it.
- Every token dies when the account's ``valid_after`` passes its issue time (a password
  change, a disable, an administrator's "end every session").

The store's ``consume`` is the single-use guarantee (an atomic delete-and-return).
"""

from __future__ import annotations

import enum
import hashlib
import hmac
import re
import secrets
from typing import Final

from satchel.errors import SatchelError
from satchel.stores.base import UserRecord
from satchel.stores.onetime import OneTimeRecord

#: Name of the pepper in the key store.
PEPPER_NAME: Final = "one-time-tokens"
PEPPER_BYTES: Final = 32
TOKEN_BYTES: Final = 32
CODE_DIGITS: Final = 6
_TOKEN_RE: Final = re.compile(r"[A-Za-z0-9_-]{43}")
_CODE_RE: Final = re.compile(r"[0-9]{6}")


class TokenKind(enum.StrEnum):
    """What a one-time token may be used for (part of its stored hash)."""

    SETUP = "setup"  # create the first administrator
    INVITE = "invite"  # sign up while sign-up is by invitation
    VERIFY = "verify"  # confirm the address given at sign-up
    RESET = "reset"  # choose a new password
    SIGNIN = "signin"  # sign in by link
    SIGNIN_CODE = "signin_code"  # sign in by the 6-digit code of the same mail
    EMAIL_CHANGE = "email_change"  # confirm a new address


class InvalidOneTimeToken(SatchelError):
    """The link or code is wrong, used, expired or no longer valid."""

    code = "invalid_token"
    status = 400

    def __init__(self, detail: str | None = None) -> None:
        super().__init__(detail or "This link or code is invalid or has expired.")


def new_token() -> str:
    """A fresh link token: 256 bits, URL-safe."""
    return secrets.token_urlsafe(TOKEN_BYTES)


def new_code() -> str:
    """A fresh 6-digit sign-in code (uniform over 000000-999999)."""
    return f"{secrets.randbelow(10**CODE_DIGITS):0{CODE_DIGITS}d}"


def looks_like_token(value: object) -> bool:
    """True when ``value`` has the shape of a link token (checked before any lookup)."""
    return isinstance(value, str) and _TOKEN_RE.fullmatch(value) is not None


def looks_like_code(value: object) -> bool:
    """True when ``value`` is six ASCII digits."""
    return isinstance(value, str) and _CODE_RE.fullmatch(value) is not None


class TokenHasher:
    """Keyed hashes of tokens and codes, and password-hash fingerprints."""

    def __init__(self, pepper: bytes) -> None:
        if not isinstance(pepper, bytes) or len(pepper) < PEPPER_BYTES:
            raise ValueError(f"the pepper must be at least {PEPPER_BYTES} bytes")
        self._pepper = pepper

    def __repr__(self) -> str:
        return "TokenHasher()"

    def _mac(self, *parts: str) -> bytes:
        message = "\x00".join(parts).encode("utf-8", "surrogatepass")
        return hmac.new(self._pepper, message, hashlib.sha256).digest()

    def token(self, kind: TokenKind, token: str) -> bytes:
        """The stored hash of a link token of ``kind``."""
        return self._mac("token", kind.value, token)

    def code(self, kind: TokenKind, email_key: str, code: str) -> bytes:
        """The stored hash of a code sent to the address whose key is ``email_key``."""
        return self._mac("code", kind.value, email_key, code)

    def fingerprint(self, password_hash: str) -> str:
        """What a reset token remembers of the password hash (never the hash itself)."""
        return self._mac("password", password_hash).hex()[:32]


def usable_for(record: OneTimeRecord, user: UserRecord | None, now: float) -> bool:
    """True when ``record`` may still act on ``user`` (the account it was issued to).

    The account must exist, be enabled, and not have cut off credentials issued before the
    token (``valid_after``); the record must not have expired. Kind-specific bindings (the
    password fingerprint, the address) are checked by the flows.
    """
    if record.expires_at <= now:
        return False
    if user is None or user.disabled or record.user_id != user.id:
        return False
    return record.created_at >= user.valid_after
