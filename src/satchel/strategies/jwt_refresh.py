"""The jwt strategy with rotating refresh tokens: a record per login, read only at refresh.

Access tokens are exactly those of :class:`~satchel.strategies.jwt.JWTStrategy`, verified
the same way — signature, claims and the in-memory revocation maps, no session-store read
per request. What this class adds is a refresh *family* per login: one session record,
written at login and read or written again only when its refresh token is used (RFC 9700
§4.14.2, :class:`~satchel.strategies.refresh_family.RefreshFamilies`):

* a login returns an access token and an opaque refresh token; the family ends
  ``refresh_ttl`` seconds after the login, absolutely — refreshing never extends it, and no
  access token outlives it;
* a refresh retires the presented token with a compare-and-set and returns a new pair;
  refreshes racing with one token within ``refresh_grace`` seconds get the same successor;
* a retired token presented after that ends the family: the record is deleted, a ``theft``
  audit event is emitted, and the family's ``sid`` is published on the revocation bus, so
  its access tokens are refused through the same deny path as a logout;
* every access token of a family carries its ``sid`` and the login's ``auth_time``, so a
  password change or revoke-all ("valid after") refuses the whole family, refreshed or not.

There is a record per login, so sessions can be listed and ended one by one. Ending one
kills its refresh token at once (the store is authoritative for refreshes); its current
access token is refused in every process the revocation reaches and expires after
``access_ttl`` at the latest — the limit of verifying access tokens without a store read.
``last_seen_at`` of a family is its last refresh, not its last request.
"""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Collection, Mapping
from typing import Any, ClassVar

from satchel.audit import AuditLog
from satchel.clock import Clock, system_clock
from satchel.errors import ConfigurationError, ExpiredCredential, InvalidLogin
from satchel.identity import Identity
from satchel.jose.claims import ClaimsPolicy
from satchel.jose.keyset import KeySet
from satchel.keys.manager import KeyManager
from satchel.revocation.base import RevocationBus
from satchel.stores.base import KeyStore, SessionRecord, SessionStore, UserRecord
from satchel.strategies.application_claims import application_claims
from satchel.strategies.auth_methods import record_auth
from satchel.strategies.base import LoginContext, UserLookup
from satchel.strategies.jwt import JWTStrategy
from satchel.strategies.key_binding import record_jkt
from satchel.strategies.refresh_family import FamilyAccessors, RefreshFamilies
from satchel.strategies.session import MAX_IP, MAX_USER_AGENT
from satchel.strategies.session_auth import record_data, renew_session
from satchel.strategies.session_policy import is_remembered, session_valid
from satchel.strategies.session_tokens import is_session_id, new_session_id
from satchel.transports.base import IssuedCredentials

# A refresh that read its family just before a revocation may still mint a token right
# after it; a family's revocation is remembered this much longer than a token lives.
_IN_FLIGHT_MARGIN = 60.0
_MAX_REFRESH_TTL = 400 * 86_400


class RefreshingJWTStrategy(FamilyAccessors, JWTStrategy):
    """Signed access tokens plus a rotating refresh token per login; see the module docstring.

    ``sessions`` keeps the families. The refresh-token pepper is read from (or, the first
    time, written to) ``secrets_store``, by default the key store of ``keys`` when that is
    a :class:`KeyManager`.
    """

    name: ClassVar[str] = "jwt"
    stateful: ClassVar[bool] = True

    def __init__(
        self,
        keys: KeyManager | KeySet,
        policy: ClaimsPolicy,
        users: UserLookup,
        *,
        sessions: SessionStore,
        refresh_ttl: float = 14 * 86_400,
        refresh_grace: float = 10.0,
        secrets_store: KeyStore | None = None,
        audit: AuditLog | None = None,
        clock: Clock = system_clock,
        bus: RevocationBus | None = None,
        access_ttl: float = 900.0,
        cache_size: int = 10_000,
        cache_ttl: float = 300.0,
        key_reload_interval: float = 60.0,
    ) -> None:
        if (
            isinstance(refresh_ttl, bool)
            or not isinstance(refresh_ttl, int | float)
            or not 60 <= refresh_ttl <= _MAX_REFRESH_TTL
        ):
            raise ConfigurationError("refresh_ttl must be between 60 seconds and 400 days.")
        if secrets_store is None:
            if not isinstance(keys, KeyManager):
                raise ConfigurationError(
                    "Refresh tokens need a key store for their pepper: pass secrets_store= "
                    "or a KeyManager as keys."
                )
            secrets_store = keys.store
        super().__init__(
            keys,
            policy,
            users,
            clock=clock,
            bus=bus,
            access_ttl=access_ttl,
            cache_size=cache_size,
            cache_ttl=cache_ttl,
            key_reload_interval=key_reload_interval,
        )
        self.sessions = sessions
        self.refresh_ttl = float(refresh_ttl)
        self.families = RefreshFamilies(
            sessions,
            users,
            secrets_store,
            grace=refresh_grace,
            clock=clock,
            audit=audit or AuditLog(),
            io=self._io,
            on_reuse=self._family_reused,
            # No idle time-out: the family lives refresh_ttl from the login, used or not.
            idle_after=lambda record, now: record.absolute_expires_at,
        )

    def __repr__(self) -> str:
        return (
            f"RefreshingJWTStrategy(issuer={self.policy.issuer!r}, "
            f"sessions={type(self.sessions).__name__}, cached={len(self._cache)})"
        )

    async def start(self) -> None:
        """Load the signing keys and the refresh-token pepper."""
        await super().start()
        await self.families.start()

    # --- issuing and refreshing -----------------------------------------------------------

    async def issue(
        self, user: UserRecord, ctx: LoginContext
    ) -> tuple[Identity, IssuedCredentials]:
        """A new family: its record, the first access token and the first refresh token."""
        if user.disabled:
            raise InvalidLogin()
        app = application_claims(user)  # refused before anything is stored
        now = self.clock()
        record = self._new_family(user, ctx, now)
        refresh = self.families.first(record)
        await self._io(self.sessions.create(record, now=now))
        return await self._pair(record, user, app, refresh, now)

    async def refresh(
        self, refresh_token: str, ctx: LoginContext
    ) -> tuple[Identity, IssuedCredentials]:
        """Rotate ``refresh_token`` into a new pair; reuse of a retired one ends the family."""
        rotation = await self.families.rotate(refresh_token, ctx)
        return await self._pair(
            rotation.record, rotation.user, rotation.claims, rotation.refresh_token, rotation.now
        )

    def _new_family(self, user: UserRecord, ctx: LoginContext, now: float) -> SessionRecord:
        expires = now + self.refresh_ttl
        return SessionRecord(
            id=new_session_id(),
            user_id=user.id,
            # A family has no opaque session secret: only its refresh token reaches it.
            secret_hash=hashlib.sha256(secrets.token_bytes(32)).digest(),
            created_at=now,
            last_seen_at=now,
            idle_expires_at=expires,
            absolute_expires_at=expires,
            ip=ctx.ip[:MAX_IP] if ctx.ip else None,
            user_agent=ctx.user_agent[:MAX_USER_AGENT] if ctx.user_agent else None,
            data=record_data(user, ctx),
        )

    async def _pair(
        self,
        record: SessionRecord,
        user: UserRecord,
        app: Mapping[str, Any],
        refresh: str | None,
        now: float,
    ) -> tuple[Identity, IssuedCredentials]:
        remaining = record.absolute_expires_at - now
        ttl = min(self.access_ttl, remaining)
        if ttl < 1:
            raise ExpiredCredential("The session has expired.")
        # auth_time and amr stay the login's through every refresh (what "valid after" and
        # max_age-style checks compare against), until a step-up renews them on the record.
        auth_time, amr = record_auth(record.data, record.created_at)
        jkt = record_jkt(record.data)
        identity, token = await self._mint(user, app, record.id, auth_time, now, amr, ttl, jkt)
        issued = IssuedCredentials(
            access_token=token,
            expires_in=max(1, int(identity.expires_at - now)),
            refresh_token=refresh,
            refresh_expires_in=int(remaining) if refresh is not None else None,
            session_id=record.id,
            remember=is_remembered(record),
        )
        return identity, issued

    async def reauthenticated(
        self, identity: Identity, amr: Collection[str]
    ) -> tuple[Identity, IssuedCredentials | None]:
        """Renew the family's authentication and sign a new access token carrying it; the
        refresh token stays as it is."""
        now = self.clock()
        record, user = await renew_session(self.sessions, self.users, self._io, identity, amr, now)
        return await self._pair(record, user, application_claims(user), None, now)

    # --- ending ---------------------------------------------------------------------------

    def _revoke_until(self) -> float:
        """How long a family's revocation must be remembered: its newest access token's life."""
        return self.clock() + self.access_ttl + self.policy.leeway + _IN_FLIGHT_MARGIN

    async def _family_reused(self, sid: str, record: SessionRecord | None) -> None:
        await self._revoke_sid(sid, self._revoke_until())

    async def logout(self, identity: Identity) -> None:
        """End the family (its refresh token dies at once), then refuse its access tokens."""
        sid = identity.session_id
        if sid is None or not is_session_id(sid):
            return
        await self._io(self.sessions.delete(sid))
        # Published even when the record was already gone: a retry after a failed broadcast
        # must still reach the other processes.
        await self._revoke_sid(sid, max(self._revoke_until(), identity.expires_at))

    async def revoke_session(self, session_id: str, *, user_id: str | None = None) -> bool:
        """End one family; False when it does not exist or is not ``user_id``'s."""
        if not is_session_id(session_id):
            return False
        if user_id is not None:
            current = await self._io(self.sessions.get(session_id))
            if current is None or current.user_id != user_id:
                return False
        if await self._io(self.sessions.delete(session_id)) is None:
            return False
        await self._revoke_sid(session_id, self._revoke_until())
        return True

    async def revoke_user_sessions(self, user_id: str, *, keep: str | None = None) -> list[str]:
        """End every family of ``user_id`` except ``keep``; returns the ended ids."""
        ended = await self._io(self.sessions.delete_user(user_id, keep=keep))
        until = self._revoke_until()
        for sid in ended:
            await self._revoke_sid(sid, until)
        return ended

    async def user_changed(self, user: UserRecord) -> None:
        """End the families the change invalidates, then publish the new "valid after"."""
        ended: list[str] = []
        if user.disabled:
            ended = await self._io(self.sessions.delete_user(user.id))
        else:
            for record in await self._io(self.sessions.list_user(user.id)):
                if record.created_at <= user.valid_after:
                    await self._io(self.sessions.delete(record.id))
                    ended.append(record.id)
        # Published by id too: a step-up may have renewed a family's auth_time meanwhile.
        until = self._revoke_until()
        for sid in ended:
            await self._revoke_sid(sid, until)
        await super().user_changed(user)

    # --- listing --------------------------------------------------------------------------

    async def list_sessions(self, user_id: str) -> list[SessionRecord]:
        """The user's live families, oldest first."""
        records = await self._io(self.sessions.list_user(user_id))
        now = self.clock()
        return [r for r in records if session_valid(r, now)]

    async def list_all_sessions(self, *, limit: int = 100, offset: int = 0) -> list[SessionRecord]:
        """Live families of every user, newest first."""
        records = await self._io(self.sessions.list_all(limit=limit, offset=offset))
        now = self.clock()
        return [r for r in records if session_valid(r, now)]
