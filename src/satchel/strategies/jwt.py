"""The stateless strategy: the credential is a signed JWT access token.

Nothing is stored per request (and, in this class, nothing per login; the refreshing
variant, :mod:`satchel.strategies.jwt_refresh`, keeps one record per login that only a
refresh reads). What still has to be checked per request, and how:

* signature and claims — :func:`satchel.jose.claims.verify`; a bounded in-memory cache of already
  verified tokens makes a repeated token cost a dict lookup and an expiry check;
* "valid after" of the user (password change, disable, revoke-all: tokens whose
  ``auth_time`` — the login they descend from — is earlier are refused) — read from the user
  store on every request, unless the revocation bus reaches every process and is healthy;
  then a per-user map fed by USER events is used, each entry re-read from the store after
  ``cache_ttl`` at the latest;
* ended sessions (logout) — ``sid`` values received as SESSION events, kept until the
  tokens they block have expired.

Limits of statelessness, on purpose: a logout reaches other processes only through the bus;
one disconnected when it was published never learns of it (no store record to re-read), so
the token stays usable there until it expires, ``access_ttl`` at most: use the hybrid strategy
where that is not acceptable. Revocations never depend on the token string (J21): a
re-encoded twin of a revoked token carries the same ``sid`` and ``auth_time``.

Tokens carry ``sub``, ``sid``, ``roles``, ``preferred_username``, ``auth_time``, ``amr``,
application claims, ``iss``, ``aud``, ``iat``, ``exp``, ``jti`` (and ``cnf``: DPoP).
"""

from __future__ import annotations

import logging
import math
from collections.abc import Awaitable, Collection, Mapping
from typing import Any, ClassVar, TypeVar

from satchel.clock import Clock, system_clock
from satchel.errors import (
    ConfigurationError,
    InvalidCredential,
    InvalidLogin,
    InvalidToken,
    SatchelError,
    StoreUnavailable,
)
from satchel.identity import Identity
from satchel.jose import claims as claims_mod
from satchel.jose import jws
from satchel.jose.claims import ClaimsPolicy
from satchel.jose.keyset import KeySet
from satchel.keys.manager import KeyManager
from satchel.revocation.base import RevocationBus, RevocationEvent, RevocationKind
from satchel.stores.base import UserRecord
from satchel.strategies.application_claims import (
    AUTH_TIME_CLAIM,
    USERNAME_CLAIM,
    application_claims,
)
from satchel.strategies.auth_methods import AMR_CLAIM, methods_from, token_claims
from satchel.strategies.base import LoginContext, Strategy, UserLookup
from satchel.strategies.counters import Counters
from satchel.strategies.jwt_stepup import renew_token
from satchel.strategies.key_binding import cnf_claim
from satchel.strategies.refresh_tokens import is_refresh_token_shape
from satchel.strategies.session_tokens import new_session_id
from satchel.strategies.token_cache import drop_expired_front
from satchel.transports.base import IssuedCredentials

logger = logging.getLogger("satchel.strategies.jwt")

_T = TypeVar("_T")
_REVOKED = "Credential has been revoked."


class JWTStrategy(Strategy):
    """Signed access tokens; no server-side session records.

    ``keys`` is a :class:`KeyManager` (keys loaded in :meth:`start`, reloadable) or a fixed
    :class:`KeySet`. ``users`` is read for "valid after" checks (see the module docstring).
    """

    name: ClassVar[str] = "jwt"
    stateful: ClassVar[bool] = False

    def __init__(
        self,
        keys: KeyManager | KeySet,
        policy: ClaimsPolicy,
        users: UserLookup,
        *,
        clock: Clock = system_clock,
        bus: RevocationBus | None = None,
        access_ttl: float = 900.0,
        cache_size: int = 10_000,
        cache_ttl: float = 300.0,
        key_reload_interval: float = 60.0,
    ) -> None:
        if isinstance(cache_size, bool) or not isinstance(cache_size, int) or cache_size < 0:
            raise ConfigurationError("cache_size must be a non-negative integer.")
        for name, value in (("cache_ttl", cache_ttl), ("key_reload_interval", key_reload_interval)):
            if not isinstance(value, int | float) or not 0 <= value < math.inf:
                raise ConfigurationError(f"{name} must be a finite non-negative number.")
        if not 0 < access_ttl <= policy.max_lifetime:
            raise ConfigurationError("access_ttl must be positive and within max_lifetime.")
        self.policy = policy
        self.users = users
        self.clock = clock
        self.bus = bus
        self.access_ttl = float(access_ttl)
        self.cache_size = cache_size
        self.cache_ttl = float(cache_ttl)
        self.key_reload_interval = float(key_reload_interval)
        self.counters = Counters()
        self._manager = keys if isinstance(keys, KeyManager) else None
        if self._manager is not None and self._manager.publish_delay < self.key_reload_interval:
            # F14: a key could sign before this node has re-read the store and accepts it.
            raise ConfigurationError("key_reload_interval must not exceed the key publish delay.")
        self._static_keys = keys if isinstance(keys, KeySet) else None
        self._last_key_load = -math.inf
        # token -> (identity, trusted until): only tokens that passed full verification.
        self._cache: dict[str, tuple[Identity, float]] = {}
        # user id -> (valid_after, re-read after); used only while the bus is trusted.
        self._valid_after: dict[str, tuple[float, float]] = {}
        # sid -> instant after which every token of that session has expired anyway.
        self._ended: dict[str, float] = {}
        self._prune_at = 1024
        # Bumped by every user event and reset: a store read that started earlier must not
        # overwrite what the event said.
        self._epoch = 0
        if bus is not None:
            # Subscribed at construction so a cache never exists without its invalidation.
            bus.subscribe(self._on_event, self._on_reset)

    def __repr__(self) -> str:
        return f"JWTStrategy(issuer={self.policy.issuer!r}, cached={len(self._cache)})"

    # --- keys -----------------------------------------------------------------------------

    @property
    def keyset(self) -> KeySet:
        """The keys in use (ConfigurationError before :meth:`start` with a KeyManager)."""
        if self._manager is not None:
            return self._manager.keyset
        assert self._static_keys is not None  # the constructor set exactly one of them
        return self._static_keys

    async def start(self) -> None:
        """Load (or create, the first time) the signing keys."""
        if self._manager is not None:
            await self._io(self._manager.load_or_create())
            self._last_key_load = self.clock()

    async def reload_keys(self) -> KeySet:
        """Re-read the key store (after a rotation elsewhere) and drop verified tokens."""
        if self._manager is not None:
            await self._io(self._manager.reload())
            self._last_key_load = self.clock()
        self._cache.clear()
        return self.keyset

    async def _refresh_keys(self) -> None:
        # F14: the key view is never older than key_reload_interval, so this node accepts
        # a new key before anyone signs with it and starts signing with it in time.
        if self._manager is not None and await self._manager.refresh(self.key_reload_interval):
            self._cache.clear()  # cached expiries were computed with the old keys' not_after

    def jwks(self) -> dict[str, list[dict[str, Any]]]:
        """The public keys currently accepted (RFC 7517 JWK Set)."""
        return self.keyset.jwks(self.clock())

    # --- issuing --------------------------------------------------------------------------

    async def issue(
        self, user: UserRecord, ctx: LoginContext
    ) -> tuple[Identity, IssuedCredentials]:
        """A new access token with a fresh random ``sid``."""
        if user.disabled:
            raise InvalidLogin()
        app, now, sid = application_claims(user), self.clock(), new_session_id()
        identity, token = await self._mint(user, app, sid, now, now, ctx.amr, jkt=ctx.dpop_jkt)
        issued = IssuedCredentials(
            access_token=token,
            expires_in=max(1, int(identity.expires_at - now)),
            session_id=identity.session_id,
            remember=bool(ctx.remember),
        )
        return identity, issued

    async def _mint(
        self,
        user: UserRecord,
        app: Mapping[str, Any],
        sid: str,
        auth_time: float,
        now: float,
        amr: Collection[str],
        ttl: float | None = None,
        jkt: str | None = None,
    ) -> tuple[Identity, str]:
        """A signed access token of session ``sid``, bound to DPoP key ``jkt`` if given."""
        claims = claims_mod.build_claims(
            self.policy,
            sub=user.id,
            now=now,
            ttl=self.access_ttl if ttl is None else ttl,
            roles=user.roles,
            sid=sid,
            extra={**token_claims(app, user.username, auth_time, amr), **cnf_claim(jkt)},
        )
        await self._refresh_keys()
        keyset = self.keyset
        token = claims_mod.sign(keyset, self.policy, claims)
        identity = self._identity(claims)
        self._remember(token, identity, keyset.not_after(keyset.active.kid))
        return identity, token

    # --- verifying ------------------------------------------------------------------------

    def authenticate_cached(self, token: str) -> Identity | None:
        """A verified token whose user's "valid after" is known from the trusted bus."""
        hit = self._cache.get(token)
        if hit is None:
            return None
        now = self.clock()
        if now > hit[1] or not self._bus_trusted():
            return None
        identity = hit[0]
        entry = self._valid_after.get(identity.user_id)
        if entry is None or now > entry[1]:
            return None
        self.counters.cache_hits += 1
        sid = identity.session_id
        if (sid is not None and sid in self._ended) or identity.auth_time < entry[0]:
            raise InvalidCredential(_REVOKED)
        return identity

    async def authenticate(self, token: str) -> Identity:
        """The identity of a valid, unrevoked access token."""
        identity = self.authenticate_cached(token)
        if identity is not None:
            return identity
        now = self.clock()
        hit = self._cache.get(token)
        if hit is not None and now <= hit[1]:
            identity = hit[0]
            self.counters.cache_hits += 1
        else:
            if hit is not None:
                del self._cache[token]
            identity = await self._verify(token, now)
        sid = identity.session_id
        if sid is not None and sid in self._ended:
            raise InvalidCredential(_REVOKED)
        # The trusted-map lookup is inlined: it is the whole cost of a repeated token.
        trusted = self._bus_trusted()
        entry = self._valid_after.get(identity.user_id) if trusted else None
        if entry is not None and now <= entry[1]:
            valid_after = entry[0]
        else:
            valid_after = await self._read_valid_after(identity.user_id, now, trusted)
        if identity.auth_time < valid_after:
            raise InvalidCredential(_REVOKED)
        return identity

    async def _verify(self, token: str, now: float) -> Identity:
        if is_refresh_token_shape(token):
            raise InvalidToken("A refresh token is not an access token.")
        await self._refresh_keys()
        keyset = self.keyset
        try:
            header, claims = jws.decode(token, keyset, now)
        except jws.UnknownKey:
            # Maybe another process rotated keys; re-read at most once per interval so that
            # made-up kids cannot turn into a flood of store reads.
            if self._manager is None or now - self._last_key_load < self.key_reload_interval:
                raise
            keyset = await self.reload_keys()
            header, claims = jws.decode(token, keyset, now)
        claims_mod.check_claims(header, claims, self.policy, now)
        identity = self._identity(claims)
        self._remember(token, identity, keyset.not_after(header["kid"]))
        return identity

    def _identity(self, claims: dict[str, Any]) -> Identity:
        username = claims.get(USERNAME_CLAIM, claims["sub"])
        if type(username) is not str or not username or len(username) > 256:
            raise InvalidToken("Token username claim is invalid.")
        # Tokens issued before auth_time was a claim: their login is their iat.
        auth_time = claims.get(AUTH_TIME_CLAIM, claims["iat"])
        if type(auth_time) is not int and type(auth_time) is not float:
            raise InvalidToken("Token auth_time claim is invalid.")
        if not 0 <= auth_time <= claims_mod.MAX_TIMESTAMP:
            raise InvalidToken("Token auth_time claim is invalid.")
        return Identity(
            user_id=claims["sub"],
            username=username,
            roles=frozenset(claims.get("roles", ())),
            strategy=self.name,
            auth_time=float(auth_time),
            expires_at=float(claims["exp"]),
            session_id=claims.get("sid"),
            claims=claims,
            amr=methods_from(claims.get(AMR_CLAIM)),
        )

    def _remember(self, token: str, identity: Identity, key_not_after: float) -> None:
        if self.cache_size == 0:
            return
        until = min(identity.expires_at + self.policy.leeway, key_not_after)
        if self.policy.max_age is not None:
            issued_at = identity.claims["iat"]
            until = min(until, issued_at + self.policy.max_age + self.policy.leeway)
        drop_expired_front(self._cache, self.clock())
        if len(self._cache) >= self.cache_size:
            # Oldest first (dicts keep insertion order); an evicted token is just re-verified.
            del self._cache[next(iter(self._cache))]
        self._cache[token] = (identity, until)

    def _bus_trusted(self) -> bool:
        bus = self.bus
        return bus is not None and bus.covers_all_processes and bus.healthy and self.cache_ttl > 0

    async def _read_valid_after(self, user_id: str, now: float, trusted: bool) -> float:
        epoch = self._epoch
        self.counters.store_reads += 1
        user = await self._io(self.users.get_user(user_id))
        # A missing or disabled account invalidates every token it ever had.
        valid_after = math.inf if user is None or user.disabled else user.valid_after
        if trusted and epoch == self._epoch:
            self._set_valid_after(user_id, valid_after, now)
        return valid_after

    def _set_valid_after(self, user_id: str, valid_after: float, now: float) -> None:
        if self.cache_size == 0:
            return
        if user_id not in self._valid_after and len(self._valid_after) >= self.cache_size:
            del self._valid_after[next(iter(self._valid_after))]
        self._valid_after[user_id] = (valid_after, now + self.cache_ttl)

    reauthenticated = renew_token  # a step-up: a new token for the same sid (jwt_stepup.py)

    # --- revocation -----------------------------------------------------------------------

    async def logout(self, identity: Identity) -> None:
        """End the token's session here and, through the bus, in every process."""
        sid = identity.session_id
        if sid is None:
            return
        await self._revoke_sid(sid, identity.expires_at + self.policy.leeway)

    async def _revoke_sid(self, sid: str, until: float) -> None:
        """Refuse tokens of ``sid`` here at once, then in every process through the bus."""
        self._end_session(sid, until)
        if self.bus is not None:
            await self._io(self.bus.publish(RevocationEvent(RevocationKind.SESSION, sid, until)))

    async def user_changed(self, user: UserRecord) -> None:
        """Publish the user's new "valid after" so every process refuses older tokens."""
        now = self.clock()
        valid_after = user.valid_after
        if user.disabled:
            # Strictly after now: "valid after" admits a token of a login at that very instant.
            valid_after = math.nextafter(max(valid_after, now), math.inf)
        self._epoch += 1
        self._set_valid_after(user.id, valid_after, now)
        if self.bus is not None:
            # Any token issued before valid_after has expired by ``until``.
            until = max(valid_after, now) + self.policy.max_lifetime + self.policy.leeway
            event = RevocationEvent(RevocationKind.USER, user.id, until, valid_after)
            await self._io(self.bus.publish(event))

    def _end_session(self, sid: str, until: float) -> None:
        self._ended[sid] = max(until, self._ended.get(sid, until))
        if len(self._ended) >= self._prune_at:
            now = self.clock()
            self._ended = {s: u for s, u in self._ended.items() if u >= now}
            self._prune_at = max(1024, 2 * len(self._ended))

    def _on_event(self, event: RevocationEvent) -> None:
        self.counters.revocations_received += 1
        if event.kind is RevocationKind.SESSION:
            self._end_session(event.subject, event.until)
        else:
            self._epoch += 1
            self._set_valid_after(event.subject, event.valid_after, self.clock())

    def _on_reset(self) -> None:
        # Events may have been missed while disconnected: forget everything derived from
        # them except the ended sessions, which only ever make us stricter.
        self._epoch += 1
        self._cache.clear()
        self._valid_after.clear()
        self.counters.cache_flushes += 1

    async def _io(self, operation: Awaitable[_T]) -> _T:
        """Await a store or bus call; an infrastructure failure fails closed as 503."""
        try:
            return await operation
        except SatchelError:
            raise
        except Exception as exc:
            logger.warning("jwt strategy backend failed: %s", type(exc).__name__)
            raise StoreUnavailable() from exc
