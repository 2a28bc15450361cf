"""A session record's authentication: the identity it gives, and the step-up that renews it.

Shared by the session, hybrid and refreshing jwt strategies, whose logins are all session
records (:mod:`satchel.strategies.auth_methods` says what the record keeps).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Collection, Mapping
from typing import Any, TypeVar

from satchel.dbsc.record import device_key_of
from satchel.errors import InvalidCredential, NotSupported
from satchel.identity import Identity
from satchel.stores.base import SessionDataStore, SessionRecord, SessionStore, UserRecord
from satchel.strategies.auth_methods import AMR_CLAIM, as_claim, combine, record_auth, stamped
from satchel.strategies.base import LoginContext, UserLookup
from satchel.strategies.key_binding import bind_record, cnf_claim, record_jkt
from satchel.strategies.session_policy import REMEMBER_KEY, session_valid
from satchel.strategies.session_tokens import is_session_id

_T = TypeVar("_T")
GuardedIO = Callable[[Awaitable[_T]], Awaitable[_T]]

_ENDED = "Unknown or ended session."


def record_data(user: UserRecord, ctx: LoginContext) -> dict[str, object]:
    """The data of a new session record: who, "remember me", the methods and the DPoP key."""
    data: dict[str, object] = {"u": user.username, "r": sorted(user.roles)}
    if ctx.remember:
        data[REMEMBER_KEY] = True
    if ctx.amr:
        data[AMR_CLAIM] = as_claim(ctx.amr)
    bind_record(data, ctx.dpop_jkt)
    return data


def session_identity(
    record: SessionRecord, user: UserRecord, claims: Mapping[str, Any], strategy: str
) -> Identity:
    """The identity of a verified session ``record`` of ``user``."""
    auth_time, amr = record_auth(record.data, record.created_at)
    jkt = record_jkt(record.data)
    if jkt is not None:  # a DPoP-bound session (RFC 9449): its identity says so like a JWT's
        claims = {**claims, **cnf_claim(jkt)}
    return Identity(
        user_id=record.user_id,
        username=user.username,
        roles=frozenset(user.roles),
        strategy=strategy,
        auth_time=auth_time,
        expires_at=record.expires_at(),
        session_id=record.id,
        claims=claims,
        amr=amr,
        device_key=device_key_of(record.data),
    )


def with_expiry(identity: Identity, expires_at: float) -> Identity:
    """A copy of ``identity`` expiring at ``expires_at``."""
    return Identity(
        user_id=identity.user_id,
        username=identity.username,
        roles=identity.roles,
        strategy=identity.strategy,
        auth_time=identity.auth_time,
        expires_at=expires_at,
        session_id=identity.session_id,
        transport=identity.transport,
        claims=identity.claims,
        amr=identity.amr,
        device_key=identity.device_key,
    )


async def renew_session(
    store: SessionStore,
    users: UserLookup,
    io: GuardedIO[Any],
    identity: Identity,
    amr: Collection[str],
    now: float,
) -> tuple[SessionRecord, UserRecord]:
    """Stamp ``now`` and ``amr`` on the live session of ``identity``: its record and user.

    ``now`` must be taken before this call: the account is read after the record is written,
    so a password change this read misses ends the session with a later ``valid_after``,
    which still refuses every token renewed here (and the change publishes the ended id).
    """
    sid = identity.session_id
    if sid is None or not is_session_id(sid):
        raise InvalidCredential(_ENDED)
    record = await io(store.get(sid))
    if record is None or record.user_id != identity.user_id or not session_valid(record, now):
        raise InvalidCredential(_ENDED)
    _, methods = record_auth(record.data, record.created_at)
    data = stamped(record.data, combine(methods, amr), now)
    if not isinstance(store, SessionDataStore):
        raise NotSupported("This session store cannot record a renewed authentication.")
    if not await io(store.update_data(sid, data)):
        raise InvalidCredential(_ENDED)
    user = await io(users.get_user(record.user_id))
    if user is None or user.disabled or record.created_at < user.valid_after:
        raise InvalidCredential(_ENDED)
    record.data = data
    return record, user
