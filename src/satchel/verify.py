"""Verify satchel access tokens in another service: only the JWKS URL, optionally Redis.

::

    verifier = Verifier("https://auth.example/.well-known/jwks.json",
                        issuer="https://auth.example", audience="api",
                        redis_url="redis://cache:6379/0")
    await verifier.start()
    identity = await verifier.verify(token)   # raises InvalidToken / InvalidCredential

Keys come from the JWKS, cached; an unknown ``kid`` triggers a re-fetch (at most once per
``refetch_interval``), the set is refreshed in the background after ``max_age`` or the
response's shorter ``Cache-Control: max-age`` (the auth server keeps it under its key
publish delay, so a new key is fetched before it signs), and when a fetch fails the last
good set stays in use. Symmetric (``oct``) keys in a JWKS are ignored:
anyone who can read a JWKS could forge with them.

Revocation: with ``redis_url`` the verifier subscribes to the auth server's revocation
channel (:class:`~satchel.revocation.redis.RedisBus`, same ``prefix``; a ``redis+cluster://``
URL subscribes over the cluster's sharded pub/sub) and refuses tokens of
ended sessions and of users whose credentials were invalidated. It has no store to fall
back on, so it fails closed: while the channel is down :meth:`Verifier.verify` raises
:class:`~satchel.errors.StoreUnavailable` (503), and a token issued before the verifier last
(re)subscribed is refused as unknown — a revocation of it may have been missed — so the
client refreshes it once at the auth server. Without ``redis_url`` only signature and
claims are checked: a token then stays usable until it expires, like any plain JWT.

DPoP (RFC 9449): pass the request's ``method``, ``url`` and ``DPoP`` header as ``proof``
(``verify(token, method="GET", url="https://api.example/x", proof=header)``) for a token
presented under the ``DPoP`` scheme. A DPoP-bound token (``cnf.jkt``) is refused without a
proof by its key; the proof's ``jti`` replay cache is ``dpop_replay``, by default Redis under
``prefix`` with ``redis_url`` (shared by every verifier, and by the auth server) and this
process's memory otherwise.
"""

from __future__ import annotations

import asyncio
import json
import logging
import math
import re
import urllib.parse
import urllib.request
from typing import Any

from satchel.clock import Clock, system_clock
from satchel.dpop.guard import DPoPGuard
from satchel.errors import ConfigurationError, InvalidCredential, InvalidToken, StoreUnavailable
from satchel.identity import Identity
from satchel.jose import claims as claims_mod
from satchel.jose import jws
from satchel.jose.claims import ClaimsPolicy
from satchel.jose.jwk import SigningKey, key_from_jwk
from satchel.jose.keyset import KeySet
from satchel.revocation.base import RevocationBus, RevocationEvent
from satchel.stores.onetime import MemoryOneTimeStore, OneTimeTokenStore
from satchel.strategies.identity_claims import identity_from_claims
from satchel.strategies.revocation_state import RevocationState
from satchel.strategies.token_cache import drop_expired_front

logger = logging.getLogger("satchel.verify")

#: Largest JWKS document accepted, in bytes.
MAX_JWKS_BYTES = 256 * 1024
_REVOKED = "The session has ended."


_MAX_AGE_RE = re.compile(r"(?:^|,)\s*max-age\s*=\s*(\d{1,10})\s*(?:,|$)", re.IGNORECASE)
_NO_CACHE_RE = re.compile(r"(?:^|,)\s*(?:no-cache|no-store)\s*(?:,|$)", re.IGNORECASE)


def cache_max_age(cache_control: str | None) -> float | None:
    """Seconds a response may be cached per its ``Cache-Control``; None when it says nothing."""
    if not cache_control:
        return None
    if _NO_CACHE_RE.search(cache_control):
        return 0.0
    match = _MAX_AGE_RE.search(cache_control)
    return None if match is None else float(match.group(1))


def _fetch_jwks(url: str, timeout: float) -> tuple[bytes, float | None]:
    request = urllib.request.Request(url, headers={"Accept": "application/json"})  # noqa: S310
    with urllib.request.urlopen(request, timeout=timeout) as response:  # noqa: S310 - http(s) only
        body: bytes = response.read(MAX_JWKS_BYTES + 1)
        max_age = cache_max_age(response.headers.get("Cache-Control"))
    if len(body) > MAX_JWKS_BYTES:
        raise ValueError("JWKS document too large")
    return body, max_age


def parse_jwks(body: bytes | str) -> list[SigningKey]:
    """The usable public signature keys of a JWKS document; ValueError if it is not one."""
    data: Any = json.loads(body)
    if not isinstance(data, dict) or not isinstance(data.get("keys"), list):
        raise ValueError("not a JWK Set")
    keys: list[SigningKey] = []
    for jwk in data["keys"]:
        if not isinstance(jwk, dict) or jwk.get("kty") == "oct":
            continue
        try:
            keys.append(key_from_jwk(jwk))
        except ConfigurationError as exc:
            logger.warning("skipped unusable JWK: %s", exc.detail)
    return keys


def _replay_client(url: str) -> Any:
    """The Redis (or Redis Cluster) client of the DPoP replay cache."""
    from satchel.stores import redis_client, redis_cluster_client

    if redis_cluster_client.is_cluster_url(url):
        timeout = redis_client.DEFAULT_TIMEOUT
        return redis_cluster_client.connect(
            url, socket_timeout=timeout, socket_connect_timeout=timeout
        )
    return redis_client.connect(url)


class Verifier:
    """Checks access tokens of one satchel issuer; see the module docstring."""

    def __init__(
        self,
        jwks_url: str,
        *,
        issuer: str,
        audience: str,
        redis_url: str | None = None,
        prefix: str = "satchel",
        leeway: float = 30.0,
        max_lifetime: float = 86_400.0,
        max_age: float = 60.0,
        refetch_interval: float = 30.0,
        fetch_timeout: float = 5.0,
        cache_size: int = 10_000,
        clock: Clock = system_clock,
        bus: RevocationBus | None = None,
        dpop_replay: OneTimeTokenStore | None = None,
        dpop_max_age: float = 60.0,
    ) -> None:
        scheme = urllib.parse.urlsplit(jwks_url).scheme.lower()
        if scheme not in ("http", "https"):
            raise ConfigurationError("The JWKS URL must be http:// or https://.")
        if redis_url is not None and bus is not None:
            raise ConfigurationError("Give redis_url or bus, not both.")
        self.jwks_url = jwks_url
        self.policy = ClaimsPolicy(
            issuer=issuer, audience=audience, leeway=leeway, max_lifetime=max_lifetime
        )
        self.max_age = float(max_age)
        self.refetch_interval = float(refetch_interval)
        self.fetch_timeout = float(fetch_timeout)
        self.cache_size = cache_size
        self.clock = clock
        if redis_url is not None:
            from satchel.revocation import redis_bus

            bus = redis_bus(redis_url, prefix)
            if dpop_replay is None:
                from satchel.stores.redis_onetime import RedisOneTimeStore

                self._redis: Any = _replay_client(redis_url)
                dpop_replay = RedisOneTimeStore(self._redis, prefix=prefix)
        self.bus = bus
        replay = dpop_replay if dpop_replay is not None else MemoryOneTimeStore()
        self.dpop = DPoPGuard(replay, clock=clock, max_age=dpop_max_age)
        self.revoked = RevocationState(max_lifetime + leeway)
        self.keyset = KeySet.verify_only(())
        self._fetched_at = -math.inf
        # The shorter of max_age and the last response's Cache-Control max-age.
        self._stale_after = self.max_age
        self._attempted_at = -math.inf
        self._refresh_task: asyncio.Task[None] | None = None
        self._fetch_lock = asyncio.Lock()
        self._verified: dict[str, tuple[Identity, float]] = {}
        self._subscribed_at = math.inf
        self._bus_was_down = True
        if bus is not None:
            bus.subscribe(self._on_event, self._on_reset)

    def __repr__(self) -> str:
        return f"Verifier(issuer={self.policy.issuer!r}, kids={self.keyset.kids()!r})"

    async def start(self) -> None:
        """Fetch the keys and subscribe to the revocation channel.

        Raises :class:`StoreUnavailable` when the first JWKS fetch fails; a channel that is
        not up yet only makes :meth:`verify` answer 503 until it is.
        """
        if not await self.refresh_keys(force=True):
            raise StoreUnavailable("The JWKS could not be fetched.")
        if self.bus is not None:
            await self.bus.start()
            self._trusted()

    async def close(self) -> None:
        """Stop background work and the subscription."""
        task, self._refresh_task = self._refresh_task, None
        if task is not None:
            task.cancel()
        if self.bus is not None:
            await self.bus.close()
        client = getattr(self, "_redis", None)
        if client is not None:
            from satchel.stores.redis_client import close

            await close(client)

    async def refresh_keys(self, *, force: bool = False) -> bool:
        """Re-fetch the JWKS (rate limited unless ``force``); False when it failed."""
        async with self._fetch_lock:
            now = self.clock()
            if not force and now - self._attempted_at < self.refetch_interval:
                return False
            self._attempted_at = now
            try:
                body, max_age = await asyncio.to_thread(
                    _fetch_jwks, self.jwks_url, self.fetch_timeout
                )
                keys = parse_jwks(body)
            except Exception as exc:  # network, HTTP or format: keep the last good set
                logger.warning("JWKS fetch failed, keeping %d keys: %s", len(self.keyset), exc)
                return False
            self.keyset = KeySet.verify_only(keys)
            self._fetched_at = self.clock()
            self._stale_after = self.max_age if max_age is None else min(self.max_age, max_age)
            self._verified.clear()
            return True

    async def verify(
        self,
        token: str,
        *,
        method: str | None = None,
        url: str | None = None,
        proof: str | None = None,
    ) -> Identity:
        """The identity of a valid, unrevoked access token; raises otherwise.

        ``proof`` (the ``DPoP`` header, with the request's ``method`` and full ``url``) is
        for a token sent as ``Authorization: DPoP``; a bound token without one is refused.
        """
        now = self.clock()
        watched = self.bus is not None
        if watched and not self._trusted():
            raise StoreUnavailable("The revocation channel is down; try again shortly.")
        if now - self._fetched_at > self._stale_after and self._refresh_task is None:
            self._refresh_task = asyncio.create_task(self._background_refresh())
        hit = self._verified.get(token)
        if hit is not None and now <= hit[1]:
            identity = hit[0]
        else:
            identity = await self._verify(token, now)
        if watched and self.revoked.blocks(
            identity.session_id, identity.user_id, identity.auth_time
        ):
            raise InvalidCredential(_REVOKED)
        if proof is not None and (method is None or url is None):
            raise ConfigurationError("A DPoP proof is checked against the method and url.")
        proofs = [proof] if proof is not None else []
        dpop = proof is not None
        await self.dpop.resource_request(identity, token, dpop, proofs, method or "", url or "")
        return identity

    async def _verify(self, token: str, now: float) -> Identity:
        try:
            header, claims = jws.decode(token, self.keyset, now)
        except jws.UnknownKey:
            if not await self.refresh_keys():
                raise
            header, claims = jws.decode(token, self.keyset, now)
        claims_mod.check_claims(header, claims, self.policy, now)
        identity = identity_from_claims(claims, "hybrid")
        if self.bus is not None and claims["iat"] <= self._subscribed_at:
            raise InvalidToken("Token predates the revocation feed; refresh it.")
        drop_expired_front(self._verified, now)
        if len(self._verified) >= self.cache_size and self._verified:
            del self._verified[next(iter(self._verified))]
        until = min(identity.expires_at + self.policy.leeway, self.keyset.not_after(header["kid"]))
        self._verified[token] = (identity, until)
        return identity

    async def _background_refresh(self) -> None:
        try:
            await self.refresh_keys()
        finally:
            self._refresh_task = None

    def _trusted(self) -> bool:
        bus = self.bus
        if bus is None or not bus.healthy:
            self._bus_was_down = True
            return False
        if self._bus_was_down:
            self._bus_was_down = False
            self._on_reset()
        return True

    def _on_event(self, event: RevocationEvent) -> None:
        self.revoked.apply(event, self.clock())

    def _on_reset(self) -> None:
        # Missed events are unknowable; tokens issued until now are refused (see above).
        self._subscribed_at = self.clock()
        self._verified.clear()
