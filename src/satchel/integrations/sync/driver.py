"""satchel for synchronous code: the async core driven from request threads.

:class:`SyncAuth` owns one :class:`~satchel.Auth` per process, built and started on that
process's private event loop (:mod:`satchel.integrations.sync.loop`). A request goes one of
two ways:

- **the steady state** — a repeated credential while the cache is trusted — is answered in
  the calling thread by :meth:`~satchel.strategies.base.Strategy.authenticate_cached`:
  pure code over the strategy's in-memory maps, no I/O, no lock, no hop to the loop;
- **everything else** (a first-seen credential, an expired cache entry, login, logout,
  refresh, listing and revoking sessions) runs on the loop as the async core's own
  coroutines, and the thread waits for the result (bounded: 503 past ``call_timeout``).

The revocation bus runs on the same loop, so the maps the steady state reads stay fed; they
are trusted only while the loop's heartbeat is recent. Framework glue (Flask, Django) reads
requests through :meth:`SyncAuth.resolve` / :meth:`SyncAuth.aresolve` and serves the JSON API
through :meth:`SyncAuth.handle`. Nothing here imports a framework.
"""

from __future__ import annotations

import asyncio
import atexit
import logging
import threading
import time
import weakref
from collections.abc import Awaitable, Callable, Coroutine, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final, NamedTuple, TypeVar

from satchel.auth import Auth
from satchel.clock import Clock, system_clock
from satchel.dbsc.enforce import require_bound
from satchel.errors import InvalidCredential, SatchelError, StoreUnavailable
from satchel.identity import Identity
from satchel.integrations.asgi import with_transport
from satchel.integrations.dpop import audited, check_request, proof_due, proofless_refusal
from satchel.integrations.http_api.messages import (
    ApiRequest,
    ApiResponse,
    internal_error_response,
    satchel_error_response,
)
from satchel.integrations.http_api.routes import Route, handle, handle_sync
from satchel.integrations.refresh import REFRESH_ROUTE, refresh_in_place, refreshable
from satchel.integrations.scope import SCOPE_ERROR, SCOPE_IDENTITY, SCOPE_TRANSPORT
from satchel.integrations.sync.loop import LoopThread
from satchel.transports.base import RawHeaders
from satchel.transports.bearer import dpop_scheme
from satchel.transports.client_ip import IPNetwork, parse_networks

if TYPE_CHECKING:
    from satchel.accounts.passwords import PasswordHasher
    from satchel.audit import AuditLog
    from satchel.config.settings import Settings
    from satchel.stores.base import UserStore

logger = logging.getLogger("satchel.integrations.sync")

T = TypeVar("T")

DEFAULT_CALL_TIMEOUT: Final = 10.0
DEFAULT_START_TIMEOUT: Final = 30.0
#: After a failed start, calls answer 503 for this long before the next attempt.
RESTART_BACKOFF: Final = 1.0

_INSTANCES: weakref.WeakSet[SyncAuth] = weakref.WeakSet()


class Resolution(NamedTuple):
    """What authenticating one request found.

    ``identity`` (None: anonymous or rejected), the ``transport`` name the credential came
    on, the ``error`` that rejected it, and ``headers`` to add to the response (the new
    cookies of a hybrid session refreshed in place). A tuple: built on every request, and a
    frozen dataclass costs a microsecond more to build.
    """

    identity: Identity | None
    transport: str | None = None
    error: SatchelError | None = None
    headers: Sequence[tuple[str, str]] = ()

    def __repr__(self) -> str:
        return f"Resolution({self.identity!r}, transport={self.transport!r})"


ANONYMOUS: Final = Resolution(None)


@dataclass(frozen=True, slots=True)
class _Pending:
    """A request the steady state could not answer: the loop finishes it."""

    transport: str | None
    token: str | None
    headers: RawHeaders
    path: str
    peer: str | None
    request: tuple[str, str] | None = None  # method and URL, for a DPoP proof


class SyncAuth:
    """One :class:`Auth` per process for synchronous callers; see the module docstring.

    Built from ``settings`` (default: the ``SATCHEL_*`` environment) by
    :func:`satchel.build_auth` with ``users``, ``clock``, ``hasher`` and ``audit``, or by
    ``build`` (an async factory returning an :class:`Auth`) — lazily, on the first call,
    in each process. :meth:`close` (also run at interpreter exit) closes it.
    """

    def __init__(
        self,
        settings: Settings | None = None,
        *,
        users: UserStore | None = None,
        clock: Clock = system_clock,
        hasher: PasswordHasher | None = None,
        audit: AuditLog | None = None,
        build: Callable[[], Awaitable[Auth]] | None = None,
        call_timeout: float = DEFAULT_CALL_TIMEOUT,
        start_timeout: float = DEFAULT_START_TIMEOUT,
    ) -> None:
        from satchel.config.settings import Settings

        self.settings = settings if settings is not None else Settings()
        self.call_timeout = float(call_timeout)
        self.start_timeout = float(start_timeout)
        #: Proxies whose ``X-Forwarded-For`` is believed (``settings.trusted_proxies``).
        self.proxies: tuple[IPNetwork, ...] = parse_networks(self.settings.trusted_proxies)
        self._users, self._clock, self._hasher, self._audit = users, clock, hasher, audit
        self._build = build
        self._auth: Auth | None = None
        self._lock = threading.Lock()
        self._retry_at = 0.0
        self.runner = LoopThread(on_death=self._lost, on_fork=self._forget)
        _INSTANCES.add(self)

    def __repr__(self) -> str:
        return f"SyncAuth(strategy={self.settings.strategy!r}, started={self._auth is not None})"

    # --- life cycle -------------------------------------------------------------------------

    @property
    def auth(self) -> Auth:
        """The started :class:`Auth` of this process (built on first use)."""
        auth = self._auth
        return auth if auth is not None else self._ensure()

    @property
    def started(self) -> bool:
        """True once this process has a started :class:`Auth`."""
        return self._auth is not None

    def _ensure(self) -> Auth:
        with self._lock:
            if self._auth is not None:
                return self._auth
            if time.monotonic() < self._retry_at:
                raise StoreUnavailable("The authentication service is starting; retry.")
            self.runner.start()
            try:
                auth = self.runner.run(self._start_auth(), self.start_timeout)
            except BaseException as exc:
                self._retry_at = time.monotonic() + RESTART_BACKOFF
                if isinstance(exc, SatchelError) or not isinstance(exc, Exception):
                    raise
                logger.error("satchel could not start: %s", type(exc).__name__, exc_info=exc)
                raise StoreUnavailable() from exc
            self._auth = auth
            return auth

    async def _start_auth(self) -> Auth:
        if self._build is not None:
            auth = await self._build()
        else:
            from satchel.config.build import build_auth

            auth = await build_auth(
                self.settings,
                users=self._users,
                clock=self._clock,
                hasher=self._hasher,
                audit=self._audit,
            )
        try:
            await auth.start()
        except BaseException:
            await auth.close()
            raise
        return auth

    def _lost(self) -> None:
        # The loop died with everything bound to it; the next call builds a new Auth.
        self._auth = None

    def _forget(self) -> None:
        # A forked child: the parent's Auth lives on a loop that does not exist here.
        self._auth = None
        self._lock = threading.Lock()
        self._retry_at = 0.0

    def close(self) -> None:
        """Close the :class:`Auth` on its loop and stop the loop (idempotent)."""
        auth, self._auth = self._auth, None
        self.runner.stop(auth.close() if auth is not None else None)

    # --- calls ------------------------------------------------------------------------------

    def run(self, coro: Coroutine[Any, Any, T], timeout: float | None = None) -> T:
        """Run a coroutine of the core on this process's loop and wait for its result."""
        if self._auth is None:
            try:
                self._ensure()
            except BaseException:
                coro.close()
                raise
        return self.runner.run(coro, self.call_timeout if timeout is None else timeout)

    def call(self, fn: Callable[[Auth], Coroutine[Any, Any, T]]) -> T:
        """``fn(auth)`` on the loop: ``sync.call(lambda a: a.users.create_user("bob", pw))``."""
        return self.run(fn(self.auth))

    async def acall(self, fn: Callable[[Auth], Coroutine[Any, Any, T]]) -> T:
        """:meth:`call` from another event loop (it is awaited, never blocks that loop)."""
        auth = self._auth if self._auth is not None else await asyncio.to_thread(self._ensure)
        return await self.runner.arun(fn(auth), self.call_timeout)

    # --- requests ---------------------------------------------------------------------------

    def _begin(
        self,
        auth: Auth,
        headers: RawHeaders,
        path: str,
        peer: str | None,
        request: tuple[str, str] | None = None,
    ) -> Any:
        """The steady state: a :class:`Resolution` from memory, or a :class:`_Pending`."""
        if not headers:  # no cookie, no Authorization: nothing to verify or refresh
            return ANONYMOUS
        try:
            found = auth.find_credential(headers)
        except SatchelError as exc:  # two different credentials, a malformed carrier
            return Resolution(None, None, exc)
        if found is None:
            if auth.refresher is not None and _refresh_cookie(auth, headers, path, None, None):
                return _Pending(None, None, headers, path, peer)
            return ANONYMOUS
        transport, token = found
        name = transport.name
        if request is not None and name == "bearer" and dpop_scheme(headers):
            # A DPoP proof: its replay check is a store write, on the loop.
            return _Pending(name, token, headers, path, peer, request)
        if time.monotonic() < self.runner.trusted_until:
            try:
                identity = auth.strategy.authenticate_cached(token)
                if identity is not None and identity.device_key is not None:
                    require_bound(auth.dbsc, identity, name, headers)
            except SatchelError as exc:  # refused from memory (revoked): never refreshed
                return Resolution(None, name, exc)
            if identity is not None:
                checked = identity.jkt is not None or (
                    name == "bearer" and proof_due(auth, headers)
                )
                if not checked or proofless_refusal(auth, identity, headers, name) is None:
                    return Resolution(with_transport(identity, name), name)
                # A DPoP refusal: finished on the loop, where it is audited.
        return _Pending(name, token, headers, path, peer)

    def resolve(
        self,
        headers: RawHeaders,
        *,
        path: str = "/",
        peer: str | None = None,
        request: tuple[str, str] | None = None,
    ) -> Resolution:
        """Authenticate a request from its raw headers (lower-case byte pairs).

        Only the credential headers matter here (``cookie``, ``authorization``, ``dpop``);
        ``request`` is the method and URL a DPoP proof is checked against
        (:func:`~satchel.integrations.sync.environ.proof_request`; without it a DPoP-bound
        token is refused). Raises :class:`StoreUnavailable` (answer 503): a store outage
        must not look like a logout.
        """
        auth = self._auth if self._auth is not None else self._ensure()
        begun = self._begin(auth, headers, path, peer, request)
        if type(begun) is Resolution:
            return begun
        result: Resolution = self.runner.run(_finish(auth, begun), self.call_timeout)
        return result

    async def aresolve(
        self,
        headers: RawHeaders,
        *,
        path: str = "/",
        peer: str | None = None,
        request: tuple[str, str] | None = None,
    ) -> Resolution:
        """:meth:`resolve` for a caller on another event loop (ASGI)."""
        auth = self._auth if self._auth is not None else await asyncio.to_thread(self._ensure)
        begun = self._begin(auth, headers, path, peer, request)
        if type(begun) is Resolution:
            return begun
        result: Resolution = await self.runner.arun(_finish(auth, begun), self.call_timeout)
        return result

    def handle(self, route: Route, request: ApiRequest) -> ApiResponse:
        """Serve one JSON API route (:data:`satchel.integrations.http_api.ROUTES`)."""
        try:
            auth = self.auth
            if not route.needs_loop:
                return handle_sync(route, auth, request, self.proxies)
            return self.run(handle(route, auth, request, self.proxies))
        except SatchelError as exc:  # the loop itself: not started, timed out
            return satchel_error_response(self._auth, exc, request.transport)
        except Exception as exc:
            return internal_error_response(exc, f"{request.method} {request.path}")

    def error_response(self, error: SatchelError, transport: str | None = None) -> ApiResponse:
        """``error`` as the API's JSON response (challenge headers for 401, Retry-After)."""
        return satchel_error_response(self._auth, error, transport)


def _refresh_cookie(
    auth: Auth, headers: RawHeaders, path: str, error: SatchelError | None, name: str | None
) -> bool:
    """True when a refresh in place applies and the request carries the refresh cookie."""
    cookie = refreshable(auth, {SCOPE_ERROR: error, SCOPE_TRANSPORT: name})
    if cookie is None or path == REFRESH_ROUTE:
        return False
    try:
        return cookie.extract_refresh(headers) is not None
    except InvalidCredential:
        return False


async def _finish(auth: Auth, pending: _Pending) -> Resolution:
    """On the loop: verify the credential in full; refresh in place when that applies."""
    name, error = pending.transport, None
    if pending.token is not None:
        try:
            identity = await auth.strategy.authenticate(pending.token)
            assert name is not None
            require_bound(auth.dbsc, identity, name, pending.headers)
            if name == "bearer" and pending.request is not None:
                method, url = pending.request
                await check_request(auth, identity, pending.token, pending.headers, method, url)
            else:
                refusal = proofless_refusal(auth, identity, pending.headers, name)
                if refusal is not None:
                    raise await audited(auth, identity, refusal)
        except StoreUnavailable:
            raise
        except SatchelError as exc:
            error = exc
        else:
            return Resolution(with_transport(identity, name), name)
    if auth.refresher is None or not _refresh_cookie(
        auth, pending.headers, pending.path, error, name
    ):
        return Resolution(None, name, error)
    scope: dict[str, Any] = {
        "type": "http",
        "headers": pending.headers,
        "path": pending.path,
        "client": (pending.peer, 0) if pending.peer else None,
        SCOPE_ERROR: error,
        SCOPE_TRANSPORT: name,
        SCOPE_IDENTITY: None,
    }
    refreshed = await refresh_in_place(auth, scope)
    if refreshed is None:
        return Resolution(None, name, scope[SCOPE_ERROR])
    return Resolution(scope[SCOPE_IDENTITY], "cookie", None, refreshed)


@atexit.register
def _close_all() -> None:
    for instance in list(_INSTANCES):
        try:
            instance.close()
        except Exception as exc:  # exiting anyway; say why
            logger.warning("satchel did not close cleanly: %s", type(exc).__name__)
