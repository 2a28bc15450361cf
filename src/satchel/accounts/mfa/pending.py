"""The ``mfa_token`` of a half-finished login: what it is, and the record behind it.

A password accepted while a second factor is due gives the client an ``mfa_token``
instead of a credential: 32 random bytes (base64url, 43 characters), valid for a few
minutes, used once. The store keeps only its SHA-256 (the record's key), never the token,
so a copy of the table gives nothing to present. The record says whose login it is, what it
may still do (``login``: finish with a second factor; ``enroll``: set one up first), how the
password step was asked for (transport, "remember this device") and the methods used so far.

It is usable for nothing else: it has neither the shape of a session token (``id.secret``)
nor of a signed token, no strategy stores it, and every route that accepts it reads it from
the body, never from a cookie or an ``Authorization`` header. Pure: no I/O.
"""

from __future__ import annotations

import hashlib
import json
import secrets
from dataclasses import dataclass
from typing import TYPE_CHECKING, Final

from satchel.errors import CorruptRecord
from satchel.jose import b64

if TYPE_CHECKING:
    from satchel.auth import LoginResult

TOKEN_BYTES: Final = 32
TOKEN_LENGTH: Final = 43
#: Single-use record keys: ``mfa:`` + SHA-256 of the token.
KEY_PREFIX: Final = "mfa:"

LOGIN: Final = "login"
ENROLL: Final = "enroll"


@dataclass(frozen=True, slots=True)
class PendingLogin:
    """Whose login an ``mfa_token`` continues, and how."""

    user_id: str
    purpose: str  # LOGIN or ENROLL
    created_at: float
    amr: frozenset[str]
    remember: bool = False
    transport: str | None = None
    #: The DPoP key the password step proved (RFC 9449): the finished login is bound to it.
    dpop_jkt: str | None = None


@dataclass(frozen=True, slots=True, repr=False)
class Finished:
    """A login finished in a second step: the credential, the transport the first step was
    asked for on (None: unknown) and recovery codes made along the way (shown once)."""

    result: LoginResult
    transport: str | None
    recovery_codes: list[str] | None = None

    def __repr__(self) -> str:
        return f"Finished({self.result!r}, transport={self.transport!r})"


def new_token() -> str:
    """A fresh ``mfa_token``."""
    return b64.encode(secrets.token_bytes(TOKEN_BYTES))


def is_token(token: object) -> bool:
    """True when ``token`` has the shape of an ``mfa_token`` (nothing else is looked up)."""
    return type(token) is str and len(token) == TOKEN_LENGTH and b64.is_canonical(token)


def key_of(token: str) -> str:
    """The store key of ``token``: never the token itself."""
    return KEY_PREFIX + hashlib.sha256(token.encode("ascii")).hexdigest()


def encode(pending: PendingLogin) -> str:
    """The record's JSON text."""
    return json.dumps(
        {
            "u": pending.user_id,
            "p": pending.purpose,
            "c": pending.created_at,
            "m": sorted(pending.amr),
            "r": pending.remember,
            "t": pending.transport,
            "k": pending.dpop_jkt,
        },
        separators=(",", ":"),
    )


def decode(raw: str) -> PendingLogin:
    """Parse :func:`encode` output; :class:`CorruptRecord` otherwise."""
    try:
        d = json.loads(raw)
        transport, jkt = d.get("t"), d.get("k")
        return PendingLogin(
            user_id=str(d["u"]),
            purpose=str(d["p"]),
            created_at=float(d["c"]),
            amr=frozenset(str(m) for m in d["m"]),
            remember=bool(d.get("r", False)),
            transport=None if transport is None else str(transport),
            dpop_jkt=None if jkt is None else str(jkt),
        )
    except (ValueError, TypeError, KeyError, AttributeError) as exc:
        raise CorruptRecord("unreadable mfa_token record") from exc
