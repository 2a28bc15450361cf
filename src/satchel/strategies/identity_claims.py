"""The :class:`~satchel.identity.Identity` of a verified access token."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from satchel.errors import InvalidToken
from satchel.identity import Identity
from satchel.jose import claims as claims_mod
from satchel.strategies.application_claims import AUTH_TIME_CLAIM, USERNAME_CLAIM
from satchel.strategies.auth_methods import AMR_CLAIM, methods_from
from satchel.strategies.session_tokens import ID_LENGTH

__all__ = ["AUTH_TIME_CLAIM", "USERNAME_CLAIM", "identity_from_claims"]


def identity_from_claims(claims: Mapping[str, Any], strategy: str) -> Identity:
    """The :class:`Identity` of a verified session-bound access token.

    Demands a ``sid`` shaped like a session id and the ``auth_time`` of the login, which
    hybrid and jwt access tokens carry; a token without them is refused.
    ``Identity.claims`` is every claim of the token, application claims included.
    """
    sid = claims.get("sid")
    if type(sid) is not str or len(sid) != ID_LENGTH:
        raise InvalidToken("Token is not bound to a session.")
    auth_time = claims.get(AUTH_TIME_CLAIM)
    if (
        type(auth_time) not in (int, float) or not 0 <= auth_time <= claims_mod.MAX_TIMESTAMP  # type: ignore[operator]
    ):
        raise InvalidToken("Token auth_time claim is invalid.")
    username = claims.get(USERNAME_CLAIM)
    if type(username) is not str or not username or len(username) > claims_mod.MAX_CLAIM_TEXT:
        raise InvalidToken("Token username claim is invalid.")
    return Identity(
        user_id=claims["sub"],
        username=username,
        roles=frozenset(claims.get("roles", ())),
        strategy=strategy,
        auth_time=float(auth_time),  # type: ignore[arg-type]
        expires_at=float(claims["exp"]),
        session_id=sid,
        claims=dict(claims),
        amr=methods_from(claims.get(AMR_CLAIM)),
    )
