"""Settings -> objects: the one place that turns a :class:`Settings` into a working :class:`Auth`.

The library itself never reads configuration; applications that do not want
:class:`Settings` construct :class:`Auth` from its parts directly.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

from satchel.accounts.passwords import PasswordHasher
from satchel.accounts.users import UserService
from satchel.audit import AuditLog
from satchel.auth import Auth
from satchel.clock import Clock, system_clock
from satchel.config.dbsc import device_binding
from satchel.config.dpop import dpop_guard
from satchel.config.keys import key_manager, key_timing
from satchel.config.mfa import mfa_service
from satchel.config.settings import Settings
from satchel.config.transports import build_transports
from satchel.errors import ConfigurationError
from satchel.keys.manager import KeyManager
from satchel.revocation.base import RevocationBus
from satchel.stores import Stores, open_stores
from satchel.stores.base import OnExceed, SessionStore, UserStore
from satchel.stores.deadline import with_deadline
from satchel.strategies.base import Strategy
from satchel.strategies.session_policy import SessionPolicy
from satchel.transports.csrf import CSRFProtect

if TYPE_CHECKING:
    from satchel.accounts.throttle import LoginThrottle, ThrottlePolicy

logger = logging.getLogger("satchel.factory")


@runtime_checkable
class _SelfExpiring(Protocol):
    expires_by_itself: bool


def _expires_by_itself(store: SessionStore) -> bool:
    return isinstance(store, _SelfExpiring) and store.expires_by_itself


class ConfiguredAuth(Auth):
    """An :class:`Auth` built from :class:`Settings`; also owns its stores and hasher.

    ``settings`` is what it was built from; ``stores`` the backends it closes on
    :meth:`close`. Every other part is the typed member of :class:`Auth`.
    """

    def __init__(
        self,
        *,
        settings: Settings,
        stores: Stores,
        owns_hasher: bool = True,
        **parts: Any,
    ) -> None:
        super().__init__(**parts)
        self.settings = settings
        self.stores = stores
        self._owns_hasher = owns_hasher
        self._purger: asyncio.Task[None] | None = None
        #: The store-call wrappers the parts use (each call bounded by the time-out).
        self.bounded: Stores | None = None

    async def start(self) -> None:
        """Connect the revocation bus, start the strategy and the periodic purge."""
        await super().start()
        # A store whose sessions expire natively (Redis) would only be scanned in full, by
        # every process, for nothing.
        self_expiring = _expires_by_itself(self.stores.sessions)
        if self.settings.purge_interval > 0 and self._purger is None and not self_expiring:
            self._purger = asyncio.create_task(
                self._purge_forever(self.settings.purge_interval), name="satchel-purge"
            )

    async def probe(self) -> None:
        """One cheap read per distinct backend (a lookup of a name that cannot exist)."""
        sessions, users = self.stores.sessions, self.stores.users
        await users.get_user("-healthz-")
        if id(sessions) != id(users):
            await sessions.get("-healthz-")

    async def purge_expired(self) -> int:
        """Delete expired sessions (and used-up second-factor records) now; returns how
        many sessions went."""
        if self.mfa is not None:
            await self.mfa.docs.store.purge_expired(self.clock())
        return await self.stores.sessions.purge_expired(self.clock())

    async def _purge_forever(self, interval: float) -> None:
        # A failed purge is retried next time: expired sessions are already refused on every
        # read, so purging is housekeeping, never a security boundary.
        while True:
            await asyncio.sleep(interval)
            try:
                removed = await self.purge_expired()
            except Exception as exc:  # logged and retried; must not end the server
                logger.warning("session purge failed: %s", type(exc).__name__)
            else:
                if removed:
                    logger.info("purged %d expired sessions", removed)

    async def close(self) -> None:
        """Stop the purge, then close the strategy, bus, throttle and every store once."""
        if self._purger is not None:
            self._purger.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._purger
            self._purger = None
        try:
            await self.strategy.close()
            if self.bus is not None:
                await self.bus.close()
        finally:
            await self.stores.close()
            await self.throttle.close()
            if self.mfa is not None:
                await self.mfa.close()
            if self._owns_hasher:
                self.users.hasher.close()

    def __repr__(self) -> str:
        return (
            f"ConfiguredAuth(strategy={self.strategy.name!r}, "
            f"transports={[t.name for t in self.transports]!r})"
        )


def session_policy(settings: Settings) -> SessionPolicy:
    """The session time-outs and cap of ``settings``."""
    return SessionPolicy(
        idle_timeout=settings.idle_timeout,
        absolute_timeout=settings.absolute_timeout,
        remember_idle_timeout=settings.remember_idle_timeout,
        remember_absolute_timeout=settings.remember_absolute_timeout,
        # Activity is written at most this often; keep it well inside the idle time-out.
        touch_interval=min(60.0, settings.idle_timeout / 4),
        max_sessions_per_user=settings.max_sessions_per_user,
        on_exceed=OnExceed(settings.on_exceed),
    )


def choose_bus(
    settings: Settings, stores: Stores | None = None, clock: Clock = system_clock
) -> RevocationBus:
    """The revocation bus that is correct for this deployment (``settings.bus``).

    A memory store lives in one process, so in-process delivery reaches every cache. A
    shared store may have several processes in front of it (or the CLI revoking while the
    server runs): Redis pub/sub, PostgreSQL LISTEN/NOTIFY or the SQLite file's polled
    ``revocations`` table reach them all. See :mod:`satchel.revocation`.
    """
    from satchel.revocation import make_bus

    return make_bus(
        settings.bus,
        store=settings.store,
        sessions_store=settings.sessions_store,
        redis_url=settings.redis_url,
        prefix=settings.key_prefix,
        sessions_backend=stores.sessions if stores is not None else None,
        poll_interval=settings.bus_poll_interval,
        clock=clock,
        bus_url=settings.bus_url,
    )


async def build_auth(
    settings: Settings | None = None,
    *,
    users: UserStore | None = None,
    clock: Clock = system_clock,
    hasher: PasswordHasher | None = None,
    audit: AuditLog | None = None,
) -> ConfiguredAuth:
    """Open the stores and assemble the strategy, transports and user service of ``settings``
    (default: the ``SATCHEL_*`` environment).

    ``users`` is an application's own user store (see ``docs/users.md``): accounts are read
    from it instead of satchel's store, which then keeps only sessions and keys. ``hasher``
    replaces the default argon2id parameters (tests pass
    :meth:`PasswordHasher.insecure_fast_for_tests`). Call ``start()`` before serving and
    ``close()`` at the end; a failure here closes whatever was already opened.
    """
    settings = settings if settings is not None else Settings()
    transports = build_transports(settings)
    stores = await open_stores(
        settings.store,
        sessions_url=settings.sessions_store,
        prefix=settings.key_prefix,
        schema=settings.pg_schema,
    )
    if users is not None:
        if not isinstance(users, UserStore):
            await stores.close()
            raise ConfigurationError(
                "users must implement the UserStore protocol (see docs/users.md)."
            )
        stores = Stores(sessions=stores.sessions, users=users, keys=stores.keys)
    try:
        bus = choose_bus(settings, stores, clock)
        # Strategies and the user service see every store call bounded (503 past the
        # time-out, F06); ``stores`` itself stays the raw backends, closed on shutdown.
        bounded = with_deadline(stores, settings.store_timeout)
        service = UserService(bounded.users, hasher or PasswordHasher(), clock)
        manager = key_manager(settings, bounded.keys, clock)
        keys: KeyManager | None = manager
        strategy: Strategy
        if settings.strategy == "session":
            strategy = _session_strategy(settings, bounded, bus, clock)
            # No signing keys are needed; publish stored ones if an operator created some.
            keys = await _optional_keys(manager)
        elif settings.strategy == "jwt":
            await manager.load_or_create(settings.jwt_alg)
            audit = audit or AuditLog()
            strategy = _jwt_strategy(settings, bounded, bus, clock, manager, audit)
        else:
            await manager.load_or_create(settings.jwt_alg)
            audit = audit or AuditLog()
            strategy = _hybrid_strategy(settings, bounded, bus, clock, manager, audit)
        csrf = None
        if "cookie" in settings.transports:
            csrf = await CSRFProtect.load(
                stores.keys,
                # A CORS origin may send credentialed requests: it is trusted for CSRF too.
                trusted_origins=[*settings.trusted_origins, *settings.cors_origins],
                secure=settings.cookie_secure,
            )
        configured = ConfiguredAuth(
            settings=settings,
            stores=stores,
            owns_hasher=hasher is None,
            strategy=strategy,
            transports=transports,
            users=service,
            csrf=csrf,
            throttle=_login_throttle(settings, clock),
            keys=keys,
            bus=bus,
            audit=audit,
            mfa=mfa_service(settings, stores, clock),
            clock=clock,
        )
        configured.bounded = bounded
        configured.dbsc = await device_binding(
            settings, stores.keys, strategy, transports, configured.audit, clock
        )
        configured.dpop = await dpop_guard(settings, stores, clock, configured.audit)
        return configured
    except BaseException:
        await stores.close()
        raise


def _login_throttle(settings: Settings, clock: Clock) -> LoginThrottle:
    """Failed-login counters: in Redis when one is configured (shared by every process),
    else in this process's memory."""
    from satchel.accounts.throttle import LoginThrottle

    return LoginThrottle.from_url(
        settings.redis_url, throttle_policy(settings), clock=clock, prefix=settings.key_prefix
    )


def throttle_policy(settings: Settings) -> ThrottlePolicy:
    """The failed-login limits of ``settings`` (``SATCHEL_LOGIN_*``)."""
    from satchel.accounts.throttle import ThrottlePolicy

    return ThrottlePolicy(
        account_limit=settings.login_account_limit,
        account_window=float(settings.login_account_window),
        ip_limit=settings.login_ip_limit,
        ip_window=float(settings.login_ip_window),
    )


async def _optional_keys(manager: KeyManager) -> KeyManager | None:
    """The manager with the stored keys loaded, or None when there are none to publish."""
    if not await manager.list():
        return None
    try:
        await manager.reload()
    except ConfigurationError as exc:
        # The session strategy signs nothing; broken keys must not stop it from serving.
        logger.warning("stored signing keys not published: %s", exc.detail)
        return None
    return manager


def build_strategy(
    settings: Settings,
    stores: Stores,
    bus: RevocationBus,
    keys: KeyManager,
    *,
    clock: Clock = system_clock,
    audit: AuditLog | None = None,
) -> Strategy:
    """The strategy of ``settings`` over ``stores``, without loading or creating keys.

    :func:`build_auth` loads (or creates) the signing keys first; administration commands
    that revoke and list sign nothing, so they must not create a key either.
    """
    if settings.strategy == "jwt":
        return _jwt_strategy(settings, stores, bus, clock, keys, audit or AuditLog())
    if settings.strategy == "hybrid":
        return _hybrid_strategy(settings, stores, bus, clock, keys, audit or AuditLog())
    return _session_strategy(settings, stores, bus, clock)


def _session_strategy(
    settings: Settings, stores: Stores, bus: RevocationBus, clock: Clock
) -> Strategy:
    from satchel.strategies.session import SessionStrategy

    return SessionStrategy(
        stores.sessions,
        stores.users,
        session_policy(settings),
        clock,
        bus,
        cache_size=10_000 if settings.cache else 0,
        cache_ttl=settings.cache_ttl,
    )


def _jwt_strategy(
    settings: Settings,
    stores: Stores,
    bus: RevocationBus,
    clock: Clock,
    keys: KeyManager,
    audit: AuditLog,
) -> Strategy:
    from satchel.jose.claims import ClaimsPolicy
    from satchel.strategies.jwt_refresh import RefreshingJWTStrategy

    policy = ClaimsPolicy(
        issuer=settings.issuer, audience=settings.audience, leeway=settings.leeway
    )
    # Access tokens stay stateless; the refresh token's family is a record in the session
    # store, touched only at refresh (RFC 9700 section 4.14.2), never per request.
    return RefreshingJWTStrategy(
        keys,
        policy,
        stores.users,
        sessions=stores.sessions,
        refresh_ttl=settings.refresh_ttl,
        refresh_grace=settings.refresh_grace,
        audit=audit,
        clock=clock,
        bus=bus,
        access_ttl=settings.access_ttl,
        cache_size=10_000 if settings.cache else 0,
        cache_ttl=settings.cache_ttl,
        key_reload_interval=key_timing(settings)[1],
    )


def _hybrid_strategy(
    settings: Settings,
    stores: Stores,
    bus: RevocationBus,
    clock: Clock,
    keys: KeyManager,
    audit: AuditLog,
) -> Strategy:
    from satchel.jose.claims import ClaimsPolicy
    from satchel.strategies.hybrid import HybridStrategy

    policy = ClaimsPolicy(
        issuer=settings.issuer, audience=settings.audience, leeway=settings.leeway
    )
    # Hybrid access tokens are short-lived by design: 5 minutes unless configured.
    access_ttl = settings.access_ttl if "access_ttl" in settings.model_fields_set else 300
    return HybridStrategy(
        stores.sessions,
        stores.users,
        keys,
        policy,
        policy=session_policy(settings),
        clock=clock,
        bus=bus,
        access_ttl=access_ttl,
        refresh_grace=settings.refresh_grace,
        on_bus_down=settings.on_bus_down,
        cache_size=10_000 if settings.cache else 0,
        audit=audit,
        key_reload_interval=key_timing(settings)[1],
    )
