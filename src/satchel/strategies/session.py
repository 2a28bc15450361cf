"""The stateful session strategy: an opaque ``id.secret`` token backed by a store record.

Verification reads the session and its user from the store; while a revocation bus that
reaches every process is healthy, a per-process cache (:mod:`.session_cache`) answers a
busy client with no store reads, and every revocation published on the bus drops its
entries everywhere (the whole cache goes on a reconnect).
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Collection, Mapping
from typing import Any, ClassVar, TypeVar

from satchel.clock import Clock, system_clock
from satchel.errors import (
    ConfigurationError,
    ExpiredCredential,
    InvalidCredential,
    InvalidLogin,
    SatchelError,
    StoreUnavailable,
)
from satchel.identity import Identity
from satchel.revocation.base import RevocationBus, RevocationEvent, RevocationKind
from satchel.stores.base import SessionRecord, SessionStore, UserRecord, UserStore
from satchel.strategies.application_claims import application_claims
from satchel.strategies.base import LoginContext, Strategy
from satchel.strategies.counters import Counters
from satchel.strategies.session_auth import (
    record_data,
    renew_session,
    session_identity,
    with_expiry,
)
from satchel.strategies.session_cache import CacheEntry, SessionCache
from satchel.strategies.session_policy import (
    SessionPolicy,
    initial_expiries,
    next_idle_expiry,
    session_valid,
    should_touch,
)
from satchel.strategies.session_tokens import (
    TOKEN_LENGTH,
    hash_secret,
    is_session_id,
    new_token,
    secret_matches,
    split_token,
)
from satchel.transports.base import IssuedCredentials

logger = logging.getLogger("satchel.session")

_T = TypeVar("_T")

MAX_USER_AGENT = 512
MAX_IP = 64

_UNKNOWN = "Unknown or ended session."


class SessionStrategy(Strategy):
    """Server-side sessions with idle and absolute time-outs and a per-user cap.

    ``bus`` carries revocations to every process; the local cache is used only while it
    ``covers_all_processes`` and is ``healthy``. ``cache_ttl`` bounds how long a cached
    token is trusted without re-reading the store even when no revocation arrives.
    """

    name: ClassVar[str] = "session"
    stateful: ClassVar[bool] = True

    def __init__(
        self,
        store: SessionStore,
        users: UserStore,
        policy: SessionPolicy | None = None,
        clock: Clock = system_clock,
        bus: RevocationBus | None = None,
        cache_size: int = 10_000,
        cache_ttl: float = 300.0,
    ) -> None:
        if isinstance(cache_size, bool) or not isinstance(cache_size, int) or cache_size < 0:
            raise ConfigurationError("cache_size must be a non-negative integer.")
        if not isinstance(cache_ttl, int | float) or not 0 <= cache_ttl < float("inf"):
            raise ConfigurationError("cache_ttl must be a finite non-negative number.")
        self.store = store
        self.users = users
        self.policy = policy or SessionPolicy()
        self.clock = clock
        self.bus = bus
        self.counters = Counters()
        self.cache_size = cache_size
        self.cache_ttl = float(cache_ttl)
        self.cache = SessionCache(cache_size, self.cache_ttl)
        # The map the hot path reads, without an attribute hop through the cache object.
        self._cache = self.cache.entries
        # Bumped by every revocation and reset: a store read that started before an event
        # must not land in the cache after it (the event could not drop it yet).
        self._epoch = 0
        self._bus: RevocationBus | None = None
        if bus is not None and bus.covers_all_processes and cache_size > 0 and cache_ttl > 0:
            self._bus = bus
        if bus is not None:
            # Subscribed at construction so a cache can never exist without its invalidation.
            bus.subscribe(self._on_event, self._on_reset)

    def __repr__(self) -> str:
        return (
            f"SessionStrategy(store={type(self.store).__name__}, "
            f"cache={'on' if self._bus is not None else 'off'}, cached={len(self._cache)})"
        )

    # --- issuing ----------------------------------------------------------------------------

    async def issue(
        self, user: UserRecord, ctx: LoginContext
    ) -> tuple[Identity, IssuedCredentials]:
        """A brand-new session for ``user`` (never reuses an id; S02)."""
        claims = application_claims(user)  # refused before anything is stored
        now = self.clock()
        record, token = self._new_record(user, ctx, now)
        await self._create(record, now)
        identity = _identity(record, user, claims)
        issued = IssuedCredentials(
            access_token=token,
            expires_in=int(record.absolute_expires_at - now),
            session_id=record.id,
            remember=bool(ctx.remember),
        )
        return identity, issued

    def _new_record(
        self, user: UserRecord, ctx: LoginContext, now: float
    ) -> tuple[SessionRecord, str]:
        """A fresh session record for ``user`` and its ``id.secret`` token (nothing stored)."""
        if user.disabled:
            raise InvalidLogin()
        remember = bool(ctx.remember)
        sid, secret, token = new_token()
        idle, absolute = initial_expiries(now, self.policy, remember)
        record = SessionRecord(
            id=sid,
            user_id=user.id,
            secret_hash=hash_secret(secret),
            created_at=now,
            last_seen_at=now,
            idle_expires_at=idle,
            absolute_expires_at=absolute,
            ip=ctx.ip[:MAX_IP] if ctx.ip else None,
            user_agent=ctx.user_agent[:MAX_USER_AGENT] if ctx.user_agent else None,
            data=record_data(user, ctx),
        )
        return record, token

    async def _create(self, record: SessionRecord, now: float) -> None:
        """Persist a new session under the per-user cap and broadcast any evictions."""
        result = await self._io(
            self.store.create(
                record,
                max_per_user=self.policy.max_sessions_per_user,
                on_exceed=self.policy.on_exceed,
                now=now,
            )
        )
        if result.evicted:
            try:
                await self._ended(result.evicted, now + self.policy.longest)
            except StoreUnavailable:
                # Without the eviction broadcast the login must not succeed; do not leave an
                # unusable session behind to count against the cap.
                try:
                    await self.store.delete(record.id)
                except Exception:  # already failing closed; the record expires on its own
                    logger.warning("could not remove session after failed eviction broadcast")
                raise

    # --- verifying --------------------------------------------------------------------------

    def authenticate_cached(self, token: str) -> Identity | None:
        """A cached, fresh token while the bus is healthy; None when the store must answer."""
        bus = self._bus
        if bus is None or len(token) != TOKEN_LENGTH:
            return None
        entry = self._cache.get(token)
        if entry is None or not bus.healthy or self.clock() >= entry.fresh_until:
            return None
        self.counters.cache_hits += 1
        return entry.identity

    async def authenticate(self, token: str) -> Identity:
        """The identity behind ``token``; :class:`InvalidCredential` if unknown or ended.

        Store failures raise :class:`StoreUnavailable` (503), never a 401.
        """
        identity = self.authenticate_cached(token)
        if identity is not None:
            return identity
        bus = self._bus
        if bus is not None and len(token) == TOKEN_LENGTH:
            entry = self._cache.get(token)
            if entry is not None:
                if bus.healthy:  # its expiry, touch or TTL is due
                    return await self._revalidate(token, entry)
                # Events may be missed while the bus is down: nothing cached can be trusted.
                self._flush()
        return await self._verify(token)

    async def _revalidate(self, token: str, entry: CacheEntry) -> Identity:
        """A cached token whose expiry, touch or TTL is due."""
        now = self.clock()
        if now >= entry.idle_expires_at or now >= entry.absolute_expires_at:
            self.cache.drop_token(token)
            raise ExpiredCredential("The session has expired.")
        if now >= entry.cache_until:
            self.cache.drop_token(token)
            return await self._verify(token)
        idle = min(now + self.policy.idle_for(entry.remember), entry.absolute_expires_at)
        if not await self._io(self.store.touch(entry.sid, last_seen_at=now, idle_expires_at=idle)):
            self.cache.drop_token(token)
            raise InvalidCredential(_UNKNOWN)
        entry.last_seen_at = now
        entry.idle_expires_at = idle
        entry.identity = with_expiry(entry.identity, min(idle, entry.absolute_expires_at))
        entry.refresh(self.policy.touch_interval)
        return entry.identity

    async def _verify(self, token: str) -> Identity:
        """The store path: session, secret, expiry, account, then a throttled touch."""
        sid, secret = split_token(token)  # S10: nothing malformed reaches the store
        epoch = self._epoch
        self.counters.store_reads += 1
        record = await self._io(self.store.get(sid))
        if record is None or not secret_matches(record.secret_hash, secret):
            raise InvalidCredential(_UNKNOWN)
        now = self.clock()
        if not session_valid(record, now):
            raise ExpiredCredential("The session has expired.")
        self.counters.store_reads += 1
        user = await self._io(self.users.get_user(record.user_id))
        # Also covers account changes made without user_changed (another tool editing the
        # store). Strict "<": a session issued at the very instant of a password change (the
        # replacement one) stays valid; user_changed itself ends sessions up to and including
        # that instant.
        if user is None or user.disabled or record.created_at < user.valid_after:
            raise InvalidCredential(_UNKNOWN)
        if should_touch(record, now, self.policy):
            idle = next_idle_expiry(record, now, self.policy)
            if not await self._io(self.store.touch(sid, last_seen_at=now, idle_expires_at=idle)):
                raise InvalidCredential(_UNKNOWN)  # ended while we were reading it (F10)
            record.last_seen_at = now
            record.idle_expires_at = idle
        identity = _identity(record, user, application_claims(user))
        bus = self._bus
        if bus is not None and bus.healthy and epoch == self._epoch:
            self._remember(token, identity, record, now)
        return identity

    # --- ending -----------------------------------------------------------------------------

    async def logout(self, identity: Identity) -> None:
        """Delete the caller's session, then broadcast it; safe to retry."""
        sid = identity.session_id
        if sid is None or not is_session_id(sid):
            return
        record = await self._io(self.store.delete(sid))
        until = record.absolute_expires_at if record else self.clock() + self.policy.longest
        # Published even when the record was already gone: a retry after a failed broadcast
        # must still reach the other processes.
        await self._ended([sid], until)

    async def revoke_session(self, session_id: str, *, user_id: str | None = None) -> bool:
        """End one session; False when it does not exist or is not ``user_id``'s."""
        if not is_session_id(session_id):
            return False
        if user_id is not None:
            current = await self._io(self.store.get(session_id))
            if current is None or current.user_id != user_id:
                return False
        record = await self._io(self.store.delete(session_id))
        if record is None:
            return False
        await self._ended([session_id], record.absolute_expires_at)
        return True

    async def revoke_user_sessions(self, user_id: str, *, keep: str | None = None) -> list[str]:
        """End every session of ``user_id`` except ``keep``; returns the ended ids."""
        ended = await self._io(self.store.delete_user(user_id, keep=keep))
        await self._ended(ended, self.clock() + self.policy.longest)
        return ended

    async def user_changed(self, user: UserRecord) -> None:
        """Apply an account change.

        A disabled account loses every session; otherwise sessions created up to
        ``valid_after`` end. Every process then drops the user's cached tokens, so roles are
        re-read from the account on the next request.
        """
        ended: list[str] = []
        if user.disabled:
            ended = await self._io(self.store.delete_user(user.id))
        else:
            records = await self._io(self.store.list_user(user.id))
            for record in records:
                if record.created_at <= user.valid_after:
                    await self._io(self.store.delete(record.id))
                    ended.append(record.id)
        # Published by id too: a racing step-up may have renewed auth_time past valid_after.
        await self._ended(ended, self.clock() + self.policy.longest)
        self.cache.drop_user(user.id)
        await self._publish(
            RevocationEvent(
                RevocationKind.USER,
                user.id,
                until=self.clock() + self.policy.longest,
                valid_after=user.valid_after,
            )
        )

    async def reauthenticated(
        self, identity: Identity, amr: Collection[str]
    ) -> tuple[Identity, IssuedCredentials | None]:
        """Record a renewed authentication on the session; the token stays the same."""
        now = self.clock()
        record, user = await renew_session(self.store, self.users, self._io, identity, amr, now)
        self.cache.drop_session(record.id)
        return await self._renewed(record, user, now)

    async def _renewed(
        self, record: SessionRecord, user: UserRecord, now: float
    ) -> tuple[Identity, IssuedCredentials | None]:
        """The identity (and credential, for signed tokens) of a renewed session."""
        return _identity(record, user, application_claims(user)), None

    # --- listing ----------------------------------------------------------------------------

    async def list_sessions(self, user_id: str) -> list[SessionRecord]:
        """The user's live sessions, oldest first."""
        records = await self._io(self.store.list_user(user_id))
        now = self.clock()
        return [r for r in records if session_valid(r, now)]

    async def list_all_sessions(self, *, limit: int = 100, offset: int = 0) -> list[SessionRecord]:
        """Live sessions of every user, newest first."""
        records = await self._io(self.store.list_all(limit=limit, offset=offset))
        now = self.clock()
        return [r for r in records if session_valid(r, now)]

    # --- cache and bus ----------------------------------------------------------------------

    def _remember(self, token: str, identity: Identity, record: SessionRecord, now: float) -> None:
        self.cache.remember(token, identity, record, now, self.policy.touch_interval)

    def _flush(self) -> None:
        self._epoch += 1
        if self.cache.clear():
            self.counters.cache_flushes += 1

    def _on_event(self, event: RevocationEvent) -> None:
        self._epoch += 1
        self.counters.revocations_received += 1
        if event.kind is RevocationKind.SESSION:
            self.cache.drop_session(event.subject)
        else:
            self.cache.drop_user(event.subject)

    def _on_reset(self) -> None:
        self._flush()

    async def _ended(self, sids: list[str], until: float) -> None:
        """Drop ended sessions locally, then tell every process."""
        for sid in sids:
            self.cache.drop_session(sid)
        for sid in sids:
            await self._publish(RevocationEvent(RevocationKind.SESSION, sid, until=until))

    async def _publish(self, event: RevocationEvent) -> None:
        if self.bus is None:
            return
        self._epoch += 1
        await self._io(self.bus.publish(event))

    async def _io(self, operation: Awaitable[_T]) -> _T:
        """Await a store or bus call; any infrastructure failure fails closed as 503."""
        try:
            return await operation
        except SatchelError:
            raise
        except Exception as exc:
            logger.warning("session backend failed: %s", type(exc).__name__)
            raise StoreUnavailable() from exc


def _identity(record: SessionRecord, user: UserRecord, claims: Mapping[str, Any]) -> Identity:
    return session_identity(record, user, claims, SessionStrategy.name)
