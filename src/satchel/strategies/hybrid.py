"""The hybrid strategy: short-lived signed access tokens over server-side sessions.

Login creates a session record exactly as the session strategy does and hands out two
credentials of different kinds, never accepted in each other's place:

* an **access token**: a JWT (``typ: at+jwt``; ``sub``, ``sid``, ``jti``, ``roles``,
  ``preferred_username``, ``auth_time``, ``amr``, ``iat``, ``exp``, ``iss``, ``aud``, application
  claims) for ``access_ttl`` seconds (5 minutes), never past the session's absolute expiry;
* a **refresh token** ``<sid>.<generation>.<secret>``: opaque, bound to the session and
  stored only as a SHA-256 hash (:mod:`satchel.strategies.refresh_tokens`).

**Rotation** with reuse detection (RFC 9700 §4.14.2) is
:class:`~satchel.strategies.refresh_family.RefreshFamilies`: one successor per token even
for concurrent refreshes within ``refresh_grace``; presenting a retired token ends the
session, publishes the revocation and emits a ``theft`` audit event. A refresh never
outlives the session's absolute expiry.

**Verification without store reads.** An access token is checked by signature, claims and
two in-memory maps fed by the revocation bus: ended sessions (``sid``) and per-user "valid
after" instants. Entries are kept only while a token they block could still verify
(``access_ttl + leeway`` plus a margin for refreshes in flight). A small cache of verified
token strings makes a repeated token cost two dict lookups.

The maps are complete only while the bus reaches every process and is healthy. Otherwise
(no bus, :class:`~satchel.revocation.base.NullBus`, a disconnected subscription) every request
also reads its session and user from the store (``on_bus_down="store"``, the default) or is
refused with 503 (``on_bus_down="reject"``). Events missed while the bus was down cannot be
recovered, and a store cannot list the sessions deleted meanwhile, so after every (re)connect
— and at start-up — the cache of verified tokens is dropped and each token issued before
that instant is checked against the store once more ("forget and read through"); tokens
issued afterwards need no read. After ``access_ttl + leeway`` every such token has expired
and the process is back to zero reads per request.

The worst-case revocation delay is worked out in ``docs/security.md`` (hybrid section).
"""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping
from dataclasses import replace
from typing import Any, ClassVar, Literal

from satchel.audit import AuditLog
from satchel.clock import Clock, system_clock
from satchel.errors import (
    ConfigurationError,
    ExpiredCredential,
    InvalidCredential,
    InvalidToken,
    StoreUnavailable,
)
from satchel.identity import Identity
from satchel.jose import claims as claims_mod
from satchel.jose import jws
from satchel.jose.claims import ClaimsPolicy
from satchel.jose.keyset import KeySet
from satchel.keys.manager import KeyManager
from satchel.revocation.base import RevocationBus, RevocationEvent
from satchel.stores.base import SessionRecord, SessionStore, UserRecord, UserStore
from satchel.strategies.application_claims import application_claims
from satchel.strategies.auth_methods import record_auth, token_claims
from satchel.strategies.base import LoginContext
from satchel.strategies.identity_claims import identity_from_claims
from satchel.strategies.key_binding import cnf_claim, record_jkt
from satchel.strategies.refresh_family import FamilyAccessors, RefreshFamilies
from satchel.strategies.refresh_tokens import PEPPER_NAME as PEPPER_NAME  # its old home
from satchel.strategies.refresh_tokens import is_refresh_token_shape
from satchel.strategies.revocation_state import RevocationState
from satchel.strategies.session import SessionStrategy
from satchel.strategies.session_policy import (
    SessionPolicy,
    is_remembered,
    next_idle_expiry,
    session_valid,
)
from satchel.strategies.token_cache import drop_expired_front
from satchel.transports.base import IssuedCredentials

logger = logging.getLogger("satchel.hybrid")

OnBusDown = Literal["store", "reject"]

# A refresh that read its session just before a revocation may still mint a token right
# after it; revocations are remembered this much longer than a token lives.
_IN_FLIGHT_MARGIN = 60.0
_REVOKED = "The session has ended."


class HybridStrategy(FamilyAccessors, SessionStrategy):
    """Sessions in the store, signed access tokens on the wire, rotating refresh tokens.

    Session handling (creation under the per-user cap, logout, listing, revoking, account
    changes and their broadcast) is the session strategy's; this class adds the tokens.
    See the module docstring for the revocation model and its worst-case delay.
    """

    name: ClassVar[str] = "hybrid"
    stateful: ClassVar[bool] = True

    def __init__(
        self,
        store: SessionStore,
        users: UserStore,
        keys: KeyManager,
        claims: ClaimsPolicy,
        *,
        policy: SessionPolicy | None = None,
        clock: Clock = system_clock,
        bus: RevocationBus | None = None,
        access_ttl: float = 300.0,
        refresh_grace: float = 10.0,
        on_bus_down: OnBusDown = "store",
        cache_size: int = 10_000,
        key_reload_interval: float = 60.0,
        audit: AuditLog | None = None,
    ) -> None:
        if claims.token_type != claims_mod.ACCESS_TOKEN_TYPE:
            raise ConfigurationError("The hybrid claims policy must be for access tokens.")
        if not isinstance(access_ttl, int | float) or not 0 < access_ttl <= claims.max_lifetime:
            raise ConfigurationError("access_ttl must be positive and within max_lifetime.")
        if on_bus_down not in ("store", "reject"):
            raise ConfigurationError("on_bus_down must be 'store' or 'reject'.")
        if isinstance(cache_size, bool) or not isinstance(cache_size, int) or cache_size < 0:
            raise ConfigurationError("cache_size must be a non-negative integer.")
        covered = bus is not None and bus.covers_all_processes
        if on_bus_down == "reject" and not covered:
            raise ConfigurationError(
                "on_bus_down='reject' needs a revocation bus that reaches every process."
            )
        # The opaque-session cache of the parent stays off: no opaque token is accepted here.
        super().__init__(store, users, policy, clock, bus, cache_size=0)
        self.keys = keys
        self.claims = claims
        self.access_ttl = float(access_ttl)
        self.on_bus_down: OnBusDown = on_bus_down
        self.hybrid_cache_size = cache_size
        self.key_reload_interval = float(key_reload_interval)
        self.revoked = RevocationState(self.access_ttl + claims.leeway + _IN_FLIGHT_MARGIN)
        self._trusted_bus = bus if covered else None
        self.families = RefreshFamilies(
            store,
            users,
            keys.store,
            grace=refresh_grace,
            clock=clock,
            audit=audit or AuditLog(),
            io=self._io,
            on_reuse=self._family_reused,
            idle_after=lambda record, now: next_idle_expiry(record, now, self.policy),
        )
        # token -> (identity, trusted until): tokens that passed full verification.
        self._verified: dict[str, tuple[Identity, float]] = {}
        # Tokens issued at or before this instant may predate events this process missed.
        self._reset_at = clock()
        self._resets = 0
        self._bus_was_down = False
        self._last_key_load = -math.inf

    def __repr__(self) -> str:
        name, cached = type(self.store).__name__, len(self._verified)
        return f"HybridStrategy(store={name}, cached={cached}, revoked={len(self.revoked)})"

    # --- life cycle -------------------------------------------------------------------------

    async def start(self) -> None:
        """Load the signing keys and the refresh pepper; from now on tokens are checked."""
        await self._io(self.keys.load_or_create())
        await self.families.start()
        now = self.clock()
        self._last_key_load = now
        self._reset_at = now

    @property
    def keyset(self) -> KeySet:
        """The keys that sign and verify access tokens."""
        return self.keys.keyset

    # --- issuing ----------------------------------------------------------------------------

    async def issue(
        self, user: UserRecord, ctx: LoginContext
    ) -> tuple[Identity, IssuedCredentials]:
        """A new session with its first access and refresh tokens."""
        app = application_claims(user)  # refused before anything is stored
        now = self.clock()
        record, _ = self._new_record(user, ctx, now)
        refresh = self.families.first(record)
        await self._create(record, now)
        await self._refresh_keys()
        return self._pair(record, user, app, refresh, now)

    async def refresh(
        self, refresh_token: str, ctx: LoginContext
    ) -> tuple[Identity, IssuedCredentials]:
        """Rotate ``refresh_token`` into a new pair; reuse of a retired one ends the session."""
        rotation = await self.families.rotate(refresh_token, ctx)
        await self._refresh_keys()
        return self._pair(
            rotation.record, rotation.user, rotation.claims, rotation.refresh_token, rotation.now
        )

    def _pair(
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
        # auth_time and amr of the record: the sign-in's, kept through refresh until a step-up
        extra = token_claims(app, user.username, *record_auth(record.data, record.created_at))
        extra.update(cnf_claim(record_jkt(record.data)))  # a DPoP-bound session (RFC 9449)
        claims = claims_mod.build_claims(
            self.claims, sub=user.id, now=now, ttl=ttl, roles=user.roles, sid=record.id, extra=extra
        )
        keyset = self.keyset
        access = claims_mod.sign(keyset, self.claims, claims)
        identity = identity_from_claims(claims, self.name)
        if self._trusted():
            self._remember_token(access, identity, keyset.active.kid)
        issued = IssuedCredentials(
            access_token=access,
            expires_in=max(1, int(claims["exp"] - now)),
            refresh_token=refresh,
            refresh_expires_in=int(remaining) if refresh is not None else None,
            session_id=record.id,
            remember=is_remembered(record),
        )
        return identity, issued

    async def _renewed(
        self, record: SessionRecord, user: UserRecord, now: float
    ) -> tuple[Identity, IssuedCredentials | None]:
        await self._refresh_keys()  # a new access token; the refresh token stays
        return self._pair(record, user, application_claims(user), None, now)

    async def _family_reused(self, sid: str, record: SessionRecord | None) -> None:
        until = record.absolute_expires_at if record else self.clock() + self.policy.longest
        await self._ended([sid], until)

    # --- verifying --------------------------------------------------------------------------

    def authenticate_cached(self, token: str) -> Identity | None:
        """A verified token while the bus is trusted, checked against the revocation maps."""
        hit, bus = self._verified.get(token), self._trusted_bus
        if hit is None or self.clock() > hit[1] or bus is None or not bus.healthy:
            return None
        if self._bus_was_down:  # an outage noticed here: settled by _trusted(), full path
            return None
        identity = hit[0]
        if self.revoked.blocks(identity.session_id, identity.user_id, identity.auth_time):
            raise InvalidCredential(_REVOKED)
        self.counters.cache_hits += 1
        return identity

    async def authenticate(self, token: str) -> Identity:
        """The identity of a valid access token (an Identity is truthy: "or" skips only None)."""
        return self.authenticate_cached(token) or await self._verify_access(token, self.clock())

    async def _verify_access(self, token: str, now: float) -> Identity:
        if is_refresh_token_shape(token):
            raise InvalidToken("A refresh token is not an access token.")
        header, claims = await self._decode(token, now)
        claims_mod.check_claims(header, claims, self.claims, now)
        identity = identity_from_claims(claims, self.name)
        if self.revoked.blocks(identity.session_id, identity.user_id, identity.auth_time):
            raise InvalidCredential(_REVOKED)
        if not self._trusted():
            if self.on_bus_down == "reject":
                raise StoreUnavailable("The revocation channel is down; try again shortly.")
            await self._check_store(identity, now)
            return identity
        if claims["iat"] <= self._reset_at:
            # Issued before this process last (re)joined the bus: a revocation of it may
            # have been missed, and only the store knows.
            resets = self._resets
            await self._check_store(identity, now)
            if resets != self._resets or not self._trusted():
                return identity
        self._remember_token(token, identity, header["kid"])
        return identity

    async def _refresh_keys(self) -> None:
        # F14: keys never older than key_reload_interval: accepted before anyone signs.
        if await self.keys.refresh(self.key_reload_interval):
            self._verified.clear()

    async def _decode(self, token: str, now: float) -> tuple[dict[str, Any], dict[str, Any]]:
        await self._refresh_keys()
        try:
            return jws.decode(token, self.keyset, now)
        except jws.UnknownKey:
            # Another process may have rotated the keys; re-read them at most once per
            # interval so made-up kids cannot become a flood of store reads.
            if now - self._last_key_load < self.key_reload_interval:
                raise
            self._last_key_load = now
            await self._io(self.keys.reload())
            self._verified.clear()
            return jws.decode(token, self.keyset, now)

    async def _check_store(self, identity: Identity, now: float) -> None:
        """The session still exists and its account still accepts it."""
        sid = identity.session_id
        assert sid is not None  # identity_from_claims demands it
        self.counters.store_reads += 1
        record = await self._io(self.store.get(sid))
        if record is None or record.user_id != identity.user_id or not session_valid(record, now):
            raise InvalidCredential(_REVOKED)
        self.counters.store_reads += 1
        user = await self._io(self.users.get_user(identity.user_id))
        if user is None or user.disabled or record.created_at < user.valid_after:
            raise InvalidCredential(_REVOKED)

    def _remember_token(self, token: str, identity: Identity, kid: str) -> None:
        if self.hybrid_cache_size == 0:
            return
        until = min(identity.expires_at + self.claims.leeway, self.keyset.not_after(kid))
        drop_expired_front(self._verified, self.clock())
        if token not in self._verified and len(self._verified) >= self.hybrid_cache_size:
            # Oldest first (dicts keep insertion order); an evicted token is just re-verified.
            del self._verified[next(iter(self._verified))]
        self._verified[token] = (identity, until)

    def _trusted(self) -> bool:
        """True while the bus reaches every process and is connected."""
        bus = self._trusted_bus
        if bus is None:
            return False
        if bus.healthy:
            if self._bus_was_down:
                # Back from an outage this process noticed itself (a bus that also calls
                # on_reset just makes this happen twice, harmlessly).
                self._bus_was_down = False
                self._reset()
            return True
        self._bus_was_down = True
        return False

    # --- revocation -------------------------------------------------------------------------

    async def user_changed(self, user: UserRecord) -> None:
        """As for sessions; a disabled account also refuses every token issued until now."""
        if user.disabled:
            # Strictly after now: "valid after" admits a session created at that very instant.
            cutoff = math.nextafter(max(user.valid_after, self.clock()), math.inf)
            user = replace(user, valid_after=cutoff)
        await super().user_changed(user)

    async def _ended(self, sids: list[str], until: float) -> None:
        # Blocked here first, so a failing broadcast still leaves this process correct.
        now = self.clock()
        for sid in sids:
            self.revoked.end_session(sid, now)
        await super()._ended(sids, until)

    def _on_event(self, event: RevocationEvent) -> None:
        super()._on_event(event)
        self.revoked.apply(event, self.clock())

    def _on_reset(self) -> None:
        super()._on_reset()
        self._reset()

    def _reset(self) -> None:
        """Events may have been missed: forget verified tokens, read through for older ones."""
        self._resets += 1
        self._reset_at = self.clock()
        self._verified.clear()
        self.counters.cache_flushes += 1
