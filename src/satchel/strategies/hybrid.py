"""The hybrid strategy: short-lived signed access tokens over server-side sessions.

Login creates a session record exactly as the session strategy does and hands out two
credentials of different kinds, never accepted in each other's place:

* an **access token**: a JWT (header ``typ: at+jwt``; claims ``sub``, ``sid``, ``jti``,
  ``roles``, ``preferred_username``, ``auth_time``, ``iat``, ``exp``, ``iss``, ``aud``),
  valid for ``access_ttl`` seconds (5 minutes by default), never past the session's
  absolute expiry;
* a **refresh token** ``<sid>.<generation>.<secret>``: opaque, bound to the session and
  stored only as a SHA-256 hash. Its secret is a nonce plus an HMAC tag under a server
  pepper, so a forged token is refused before the store is asked, and only a token this
  server really issued can trigger reuse detection.

**Rotation** (RFC 9700 §4.14.2). The successor of a refresh token is derived from it with
HMAC (pepper from :meth:`KeyStore.set_secret_if_absent`), so requests that race with the
same token compute the same successor, and ``SessionStore.rotate_refresh`` installs it with
a compare-and-set: the first wins (ROTATED), the others within ``refresh_grace`` seconds
receive the same successor (GRACE) — never two independent ones. Presenting a retired
token after that (REUSED) ends the whole session, publishes the revocation and emits a
``theft`` audit event. A refresh never outlives the session's absolute expiry.

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

**Worst-case revocation delay.** A revoking call returns after the store write and the
publish; the revoking process applies it at once, every other process with a healthy
subscription when the message arrives (about a millisecond on a LAN). A subscription that
dies silently is noticed within the bus's ``ping_interval + ping_timeout`` (1.5 s by default);
from then on requests read the store, which is already authoritative. Only when the publish
itself fails (the call raises 503) and is not retried can a process with a healthy
subscription keep accepting an access token of the ended session until it expires: at most
``access_ttl + leeway``.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import logging
import math
import re
import secrets
from collections.abc import Mapping
from dataclasses import replace
from typing import Any, ClassVar, Literal

from satchel.audit import AuditEvent, AuditLog
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
from satchel.revocation.base import RevocationBus, RevocationEvent, RevocationKind
from satchel.stores.base import RotateOutcome, SessionRecord, SessionStore, UserRecord, UserStore
from satchel.strategies.base import LoginContext
from satchel.strategies.session import SessionStrategy
from satchel.strategies.session_policy import (
    SessionPolicy,
    is_remembered,
    next_idle_expiry,
    session_valid,
)
from satchel.strategies.session_tokens import ID_LENGTH
from satchel.transports.base import IssuedCredentials

logger = logging.getLogger("satchel.hybrid")

#: Name of the refresh-token pepper in the :class:`~satchel.stores.base.KeyStore`.
PEPPER_NAME = "refresh-pepper"
#: Claim carrying the display username, so a request needs no user read for it.
USERNAME_CLAIM = "preferred_username"
#: Claim carrying the session's creation instant (checked against "valid after").
AUTH_TIME_CLAIM = "auth_time"

OnBusDown = Literal["store", "reject"]

# A refresh that read its session just before a revocation may still mint a token right
# after it; revocations are remembered this much longer than a token lives.
_IN_FLIGHT_MARGIN = 60.0
_PURGE_EVERY = 30.0
_NONCE_BYTES = 32
_TAG_BYTES = 16
_SECRET_LENGTH = 64  # base64url of nonce + tag, unpadded
_MAX_GENERATION = 10**9
_REFRESH_RE = re.compile(
    rf"([A-Za-z0-9_-]{{{ID_LENGTH}}})\.(0|[1-9][0-9]{{0,9}})\.([A-Za-z0-9_-]{{{_SECRET_LENGTH}}})"
)
_REVOKED = "The session has ended."
_UNKNOWN_REFRESH = "Unknown, expired or ended refresh token."


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def is_refresh_token_shape(token: str) -> bool:
    """True when ``token`` has the exact shape of a satchel refresh token."""
    return len(token) <= 140 and _REFRESH_RE.fullmatch(token) is not None


class RefreshTokens:
    """Pure refresh-token arithmetic under one pepper (no I/O, no clock).

    ``<sid>.<gen>.<b64url(nonce || tag)>`` where ``tag = HMAC(pepper, "tag" | sid.gen.nonce)``
    and the successor's nonce is ``HMAC(pepper, "next" | token)``.
    """

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
        return f"{sid}.{gen}.{_b64(nonce + self._tag(sid, gen, nonce))}"

    def first(self, sid: str) -> str:
        """A new random refresh token (generation 0) for session ``sid``."""
        return self._build(sid, 0, secrets.token_bytes(_NONCE_BYTES))

    def successor(self, token: str, sid: str, gen: int) -> str:
        """The one token that replaces ``token``: the same for every caller presenting it."""
        nonce = hmac.digest(self._pepper, b"next\x00" + token.encode("ascii"), "sha256")
        return self._build(sid, gen + 1, nonce[:_NONCE_BYTES])

    def parse(self, token: object) -> tuple[str, int]:
        """``(sid, generation)`` of a token this server issued; InvalidCredential otherwise."""
        if type(token) is not str or not is_refresh_token_shape(token):
            raise InvalidCredential("Malformed refresh token.")
        match = _REFRESH_RE.fullmatch(token)
        assert match is not None  # checked just above
        sid, gen_text, secret = match.groups()
        gen = int(gen_text)
        try:
            raw = base64.urlsafe_b64decode(secret + "=" * (-len(secret) % 4))
        except (binascii.Error, ValueError):
            raise InvalidCredential("Malformed refresh token.") from None
        nonce, tag = raw[:_NONCE_BYTES], raw[_NONCE_BYTES:]
        # Re-encoding must give back the same text: no second spelling of one token.
        if gen >= _MAX_GENERATION or _b64(raw) != secret:
            raise InvalidCredential("Malformed refresh token.")
        if not hmac.compare_digest(tag, self._tag(sid, gen, nonce)):
            raise InvalidCredential(_UNKNOWN_REFRESH)
        return sid, gen

    @staticmethod
    def digest(token: str) -> bytes:
        """SHA-256 of the whole token: the only form the store ever sees."""
        return hashlib.sha256(token.encode("ascii")).digest()


class RevocationState:
    """Ended sessions and per-user "valid after" instants, as learnt from revocation events.

    Pure and synchronous; shared by :class:`HybridStrategy` and :mod:`satchel.verify`.
    ``keep`` is how long a token blocked by an event can stay valid after the event arrives.
    """

    __slots__ = ("_next_purge", "keep", "sessions", "users")

    def __init__(self, keep: float) -> None:
        self.keep = float(keep)
        self.sessions: dict[str, float] = {}  # sid -> remember until
        self.users: dict[str, tuple[float, float]] = {}  # user id -> (valid_after, until)
        self._next_purge = -math.inf

    def __len__(self) -> int:
        return len(self.sessions) + len(self.users)

    def apply(self, event: RevocationEvent, now: float) -> None:
        """Record ``event``; repeated or reordered events only ever make it stricter."""
        until = min(event.until, now + self.keep)
        if event.kind is RevocationKind.SESSION:
            self.sessions[event.subject] = max(until, self.sessions.get(event.subject, until))
        else:
            old_after, old_until = self.users.get(event.subject, (event.valid_after, until))
            self.users[event.subject] = (
                max(old_after, event.valid_after),
                max(old_until, until),
            )
        if now >= self._next_purge:
            self.purge(now)

    def end_session(self, sid: str, now: float) -> None:
        """Block ``sid`` locally (before the event has gone out)."""
        self.apply(RevocationEvent(RevocationKind.SESSION, sid, until=math.inf), now)

    def blocks(self, sid: str | None, user_id: str, auth_time: float) -> bool:
        """True when a token of session ``sid`` created at ``auth_time`` is revoked."""
        if sid is not None and sid in self.sessions:
            return True
        entry = self.users.get(user_id)
        return entry is not None and auth_time < entry[0]

    def purge(self, now: float) -> None:
        """Forget entries no token they block can outlive."""
        self.sessions = {k: u for k, u in self.sessions.items() if u >= now}
        self.users = {k: v for k, v in self.users.items() if v[1] >= now}
        self._next_purge = now + _PURGE_EVERY


def identity_from_claims(claims: Mapping[str, Any], strategy: str) -> Identity:
    """The :class:`Identity` of a verified hybrid access token.

    Demands what only hybrid access tokens carry (``sid``, ``auth_time``), so a token of
    the stateless strategy, which has neither a session nor its creation time, is refused.
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
    )


class HybridStrategy(SessionStrategy):
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
        if not isinstance(refresh_grace, int | float) or not 0 <= refresh_grace <= 300:
            raise ConfigurationError("refresh_grace must be between 0 and 300 seconds.")
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
        self.refresh_grace = float(refresh_grace)
        self.on_bus_down: OnBusDown = on_bus_down
        self.hybrid_cache_size = cache_size
        self.key_reload_interval = float(key_reload_interval)
        self.audit = audit or AuditLog()
        self.revoked = RevocationState(self.access_ttl + claims.leeway + _IN_FLIGHT_MARGIN)
        self._trusted_bus = bus if covered else None
        self._refresh: RefreshTokens | None = None
        # token -> (identity, trusted until): tokens that passed full verification.
        self._verified: dict[str, tuple[Identity, float]] = {}
        # Tokens issued at or before this instant may predate events this process missed.
        self._reset_at = clock()
        self._resets = 0
        self._bus_was_down = False
        self._last_key_load = -math.inf

    def __repr__(self) -> str:
        return (
            f"HybridStrategy(store={type(self.store).__name__}, "
            f"cached={len(self._verified)}, revoked={len(self.revoked)})"
        )

    # --- life cycle -------------------------------------------------------------------------

    async def start(self) -> None:
        """Load the signing keys and the refresh pepper; from now on tokens are checked."""
        await self._io(self.keys.load_or_create())
        pepper = await self._io(
            self.keys.store.set_secret_if_absent(PEPPER_NAME, secrets.token_bytes(32))
        )
        self._refresh = RefreshTokens(pepper)
        now = self.clock()
        self._last_key_load = now
        self._reset_at = now

    @property
    def keyset(self) -> KeySet:
        """The keys that sign and verify access tokens."""
        return self.keys.keyset

    @property
    def refresh_tokens(self) -> RefreshTokens:
        """The refresh-token codec (ConfigurationError before :meth:`start`)."""
        if self._refresh is None:
            raise ConfigurationError("HybridStrategy.start() has not been awaited.")
        return self._refresh

    # --- issuing ----------------------------------------------------------------------------

    async def issue(
        self, user: UserRecord, ctx: LoginContext
    ) -> tuple[Identity, IssuedCredentials]:
        """A new session with its first access and refresh tokens."""
        tokens = self.refresh_tokens
        now = self.clock()
        record, _ = self._new_record(user, ctx, now)
        refresh = tokens.first(record.id)
        record.refresh_hash = tokens.digest(refresh)
        await self._create(record, now)
        await self._refresh_keys()
        return self._pair(record, user, refresh, now)

    async def refresh(
        self, refresh_token: str, ctx: LoginContext
    ) -> tuple[Identity, IssuedCredentials]:
        """Rotate ``refresh_token`` into a new pair; reuse of a retired one ends the session."""
        tokens = self.refresh_tokens
        sid, gen = tokens.parse(refresh_token)
        successor = tokens.successor(refresh_token, sid, gen)
        now = self.clock()
        outcome = await self._io(
            self.store.rotate_refresh(
                sid,
                presented_hash=tokens.digest(refresh_token),
                successor_hash=tokens.digest(successor),
                now=now,
                grace=self.refresh_grace,
            )
        )
        if outcome is RotateOutcome.UNKNOWN:
            raise InvalidCredential(_UNKNOWN_REFRESH)
        if outcome is RotateOutcome.REUSED:
            await self._reuse_detected(sid, gen, ctx)
            raise InvalidCredential("Refresh token reuse detected; the session has been ended.")
        record = await self._io(self.store.get(sid))
        if record is None:
            raise InvalidCredential(_UNKNOWN_REFRESH)
        if not session_valid(record, now):
            raise ExpiredCredential("The session has expired.")
        user = await self._io(self.users.get_user(record.user_id))
        if user is None or user.disabled or record.created_at < user.valid_after:
            raise InvalidCredential(_UNKNOWN_REFRESH)
        # A refresh is activity: it pushes the idle expiry (never past the absolute one).
        idle = next_idle_expiry(record, now, self.policy)
        if not await self._io(self.store.touch(sid, last_seen_at=now, idle_expires_at=idle)):
            raise InvalidCredential(_UNKNOWN_REFRESH)
        record.last_seen_at, record.idle_expires_at = now, idle
        await self._refresh_keys()
        return self._pair(record, user, successor, now)

    def _pair(
        self, record: SessionRecord, user: UserRecord, refresh: str, now: float
    ) -> tuple[Identity, IssuedCredentials]:
        remaining = record.absolute_expires_at - now
        ttl = min(self.access_ttl, remaining)
        if ttl < 1:
            raise ExpiredCredential("The session has expired.")
        claims = claims_mod.build_claims(
            self.claims,
            sub=user.id,
            now=now,
            ttl=ttl,
            roles=user.roles,
            sid=record.id,
            extra={USERNAME_CLAIM: user.username, AUTH_TIME_CLAIM: record.created_at},
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
            refresh_expires_in=int(remaining),
            session_id=record.id,
            remember=is_remembered(record),
        )
        return identity, issued

    async def _reuse_detected(self, sid: str, gen: int, ctx: LoginContext) -> None:
        """A retired refresh token came back: someone holds a copy. End the family."""
        record = await self._io(self.store.delete(sid))
        until = record.absolute_expires_at if record else self.clock() + self.policy.longest
        await self.audit.emit(
            AuditEvent(
                "theft",
                user_id=record.user_id if record else None,
                session=sid,
                ip=ctx.ip,
                reason="refresh_token_reuse",
                extra={"generation": gen},
            )
        )
        await self._ended([sid], until)

    # --- verifying --------------------------------------------------------------------------

    async def authenticate(self, token: str) -> Identity:
        """The identity of a valid access token; no store read while the bus is trusted."""
        now = self.clock()
        hit = self._verified.get(token)
        if hit is not None and now <= hit[1] and self._trusted():
            identity = hit[0]
            if self.revoked.blocks(identity.session_id, identity.user_id, identity.auth_time):
                raise InvalidCredential(_REVOKED)
            self.counters.cache_hits += 1
            return identity
        return await self._verify_access(token, now)

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
        # F14: the key view is never older than key_reload_interval, so this process
        # accepts a new key before anyone signs with it and starts signing with it in time.
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
