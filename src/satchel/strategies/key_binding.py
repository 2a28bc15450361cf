"""A login's DPoP key binding (RFC 9449 §6) as the strategies record and sign it.

The thumbprint of the key (``jkt``) comes from the token request's proof
(``LoginContext.dpop_jkt``). A session record keeps it under :data:`JKT_KEY`, so every
token of that session — the opaque session token itself, the access tokens of each refresh
and step-up, and the refresh token — stays bound to the same key; the jwt strategy without
records signs it into each token. On the wire it is the ``cnf`` claim (RFC 7800).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final

from satchel.errors import InvalidCredential

#: Session-record data key of the bound key's thumbprint.
JKT_KEY: Final = "jkt"
CNF_CLAIM: Final = "cnf"


class RefreshKeyMismatch(InvalidCredential):
    """The refresh token is bound to another DPoP key than the request's proof."""


def bind_record(data: dict[str, object], jkt: str | None) -> None:
    """Record the binding of a new session (nothing for an unbound login)."""
    if jkt is not None:
        data[JKT_KEY] = jkt


def record_jkt(data: Mapping[str, Any]) -> str | None:
    """The thumbprint a session record is bound to, or None."""
    value = data.get(JKT_KEY)
    return value if isinstance(value, str) else None


def cnf_claim(jkt: str | None) -> dict[str, Any]:
    """``{"cnf": {"jkt": ...}}`` for a bound token, ``{}`` otherwise."""
    return {} if jkt is None else {CNF_CLAIM: {"jkt": jkt}}


def check_refresh_key(bound: str | None, presented: str | None) -> None:
    """A bound refresh token needs a proof by its key (public clients, RFC 9449 §5)."""
    if bound is not None and bound != presented:
        if presented is None:
            raise RefreshKeyMismatch("This refresh token is DPoP-bound: send a DPoP proof.")
        raise RefreshKeyMismatch("This refresh token is bound to another DPoP key.")
