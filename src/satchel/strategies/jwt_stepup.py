"""A step-up of the stateless jwt strategy: a new access token for the same session.

There is no record to renew, so the account is read once more and the ended-session deny
list checked, so a token of a revoked login is not renewed. ``now`` is taken before that
read: a revocation the read misses has a later ``valid_after`` and still refuses the new
token (the refreshing jwt strategy renews its family record instead,
:mod:`satchel.strategies.session_auth`).
"""

from __future__ import annotations

from collections.abc import Collection
from typing import TYPE_CHECKING

from satchel.errors import InvalidCredential
from satchel.identity import Identity
from satchel.strategies.application_claims import application_claims
from satchel.strategies.auth_methods import combine
from satchel.transports.base import IssuedCredentials

if TYPE_CHECKING:
    from satchel.strategies.jwt import JWTStrategy

_REVOKED = "Credential has been revoked."


async def renew_token(
    strategy: JWTStrategy, identity: Identity, amr: Collection[str]
) -> tuple[Identity, IssuedCredentials | None]:
    """A token of ``identity``'s session with ``auth_time`` now and ``amr`` added."""
    now = strategy.clock()
    sid = identity.session_id
    user = await strategy._io(strategy.users.get_user(identity.user_id))
    if user is None or user.disabled or identity.auth_time < user.valid_after:
        raise InvalidCredential(_REVOKED)
    if sid is None or sid in strategy._ended:
        raise InvalidCredential(_REVOKED)
    methods = combine(identity.amr, amr)
    app = application_claims(user)
    renewed, token = await strategy._mint(user, app, sid, now, now, methods, jkt=identity.jkt)
    expires_in = max(1, int(renewed.expires_at - now))
    return renewed, IssuedCredentials(access_token=token, expires_in=expires_in, session_id=sid)
