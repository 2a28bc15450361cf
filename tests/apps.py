"""One way to stand satchel up in a test: the ``make_app`` fixture (tests/conftest.py) is an
:class:`Apps`; import the types as ``from apps import ...``.

    app = await make_app("sqlite", strategy="jwt", users={"alice": ["admin"]}, access_ttl=60)
    await app.login("alice")                  # a same-origin cookie login through the API
    me = await app.client.get("/auth/me")
    app.clock.advance(61)

- ``store``: ``memory``, ``sqlite``, ``redis``, ``postgres`` or ``postgres+redis`` (a fresh
  SQLite file, Redis key prefix or PostgreSQL schema per call, deleted after the test, as
  ``make_stores`` does; ``store_address=(host, port)`` reaches it through a proxy), or a
  store URL used as it is.
- Every other keyword is a :class:`Settings` field, read on top of the ``SATCHEL_*``
  environment as the server does.
- The fast test hasher; a fresh :class:`ManualClock` unless ``clock`` is given; the app's
  lifespan runs (``lifespan=False`` skips it); everything is closed after the test.
- ``make_app.auth(...)``: the same without an app (a started :class:`ConfiguredAuth`);
  :func:`serve`: a test's own ASGI app; :class:`SyncApps`: the factory on a private event
  loop, for sync (hypothesis) tests.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Coroutine, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import httpx
import pytest

from backends import Backends
from satchel.accounts.passwords import PasswordHasher
from satchel.auth import Auth
from satchel.clock import Clock, ManualClock
from satchel.config.build import ConfiguredAuth, build_auth
from satchel.config.settings import Settings
from satchel.server import create_app
from satchel.stores.base import UserRecord

PASSWORD = "correct horse battery"
BASE = "https://testserver"

A = TypeVar("A", bound="RunningApp")


# --- clients and lifespans --------------------------------------------------------------------


def asgi_client(
    app: Any,
    *,
    base_url: str = BASE,
    peer: tuple[str, int] | None = None,
    raise_app_exceptions: bool = True,
    **options: Any,
) -> httpx.AsyncClient:
    """An httpx client that calls ``app`` in-process (``peer``: the client address it sees)."""
    transport = httpx.ASGITransport(
        app=app,
        raise_app_exceptions=raise_app_exceptions,
        client=peer or ("127.0.0.1", 123),
    )
    return httpx.AsyncClient(transport=transport, base_url=base_url, **options)


@contextlib.asynccontextmanager
async def lifespan_of(app: Any) -> AsyncIterator[None]:
    """Run a Starlette/FastAPI app's lifespan; other ASGI apps have none to run."""
    router = getattr(app, "router", None)
    if router is None:
        yield
        return
    async with router.lifespan_context(app):
        yield


@contextlib.asynccontextmanager
async def serve(
    app: Any, *, lifespan: bool = True, **client_options: Any
) -> AsyncIterator[httpx.AsyncClient]:
    """A test's own ASGI app, its lifespan running, and a client for it (see
    :func:`asgi_client` for the options)."""
    async with contextlib.AsyncExitStack() as stack:
        if lifespan:
            await stack.enter_async_context(lifespan_of(app))
        yield await stack.enter_async_context(asgi_client(app, **client_options))


# --- the app ----------------------------------------------------------------------------------


@dataclass
class RunningApp:
    """A running server app: its client, Auth, Settings and clock, plus shortcuts."""

    client: httpx.AsyncClient
    auth: Auth
    settings: Settings
    clock: ManualClock  # the clock given, if the test passed its own
    app: Any
    base_url: str = BASE
    password: str = PASSWORD
    users: dict[str, str] = field(default_factory=dict)  # username -> user id
    _stack: contextlib.AsyncExitStack = field(default_factory=contextlib.AsyncExitStack)

    @property
    def strategy(self) -> str:
        return self.auth.strategy.name

    def fresh_client(
        self, *, peer: tuple[str, int] | None = None, **options: Any
    ) -> httpx.AsyncClient:
        """A second browser: same app, its own cookie jar (``peer``: another client address).
        Closed with the app unless the test closes it first."""
        client = asgi_client(self.app, base_url=self.base_url, peer=peer, **options)
        self._stack.push_async_callback(client.aclose)
        return client

    async def create_user(
        self, username: str, password: str | None = None, roles: Sequence[str] = ()
    ) -> UserRecord:
        user = await self.auth.users.create_user(username, password or self.password, list(roles))
        self.users[username] = user.id
        return user

    async def login(
        self,
        username: str = "alice",
        password: str | None = None,
        *,
        client: httpx.AsyncClient | None = None,
        **extra: Any,
    ) -> httpx.Response:
        """A same-origin JSON login (the cookie lands in ``client``'s jar); must succeed."""
        response = await (client or self.client).post(
            "/auth/login",
            json={"username": username, "password": password or self.password, **extra},
            headers={"origin": self.base_url, "sec-fetch-site": "same-origin"},
        )
        assert response.status_code == 200, response.text
        return response

    async def bearer_token(self, username: str = "alice", password: str | None = None) -> str:
        """An access token from ``/auth/token``, fetched without touching the cookie jar."""
        async with self.fresh_client() as client:
            response = await client.post(
                "/auth/token",
                data={
                    "grant_type": "password",
                    "username": username,
                    "password": password or self.password,
                },
            )
        assert response.status_code == 200, response.text
        token: str = response.json()["access_token"]
        return token

    async def aclose(self) -> None:
        """Close the clients and end the lifespan now (again after the test: a no-op)."""
        await self._stack.aclose()


class Apps:
    """The ``make_app`` fixture: ``await make_app(store, **options) -> RunningApp``."""

    def __init__(self, backends: Backends) -> None:
        self.backends = backends
        self.hasher = PasswordHasher.insecure_fast_for_tests()
        # Unwound newest first, and on to the end even when one close fails: the backends
        # are dropped last, once nothing uses them.
        self._stack = contextlib.AsyncExitStack()
        self._stack.push_async_callback(backends.drop)
        self._stack.callback(self.hasher.close)

    def settings(
        self,
        store: str = "memory",
        *,
        store_address: tuple[str, int] | None = None,
        **overrides: Any,
    ) -> Settings:
        """:class:`Settings` for a fresh backend (or the URL given) plus ``overrides``."""
        if "://" in store:
            if store_address is not None:
                raise ValueError("store_address needs a store kind, not a URL")
            return Settings(store=store, **overrides)
        backend = self.backends.fresh(
            store,
            prefix=overrides.get("key_prefix"),
            schema=overrides.get("pg_schema"),
            address=store_address,
        )
        return Settings(**{**backend.settings(), **overrides})

    async def auth(
        self,
        store: str = "memory",
        *,
        clock: Clock | None = None,
        start: bool = True,
        **overrides: Any,
    ) -> ConfiguredAuth:
        """A :class:`ConfiguredAuth` (started unless ``start=False``), closed after the test."""
        settings = self.settings(store, **overrides)
        auth = await build_auth(
            settings, clock=clock if clock is not None else ManualClock(), hasher=self.hasher
        )
        self._stack.push_async_callback(auth.close)
        if start:
            await auth.start()
        return auth

    async def __call__(
        self,
        store: str = "memory",
        *,
        strategy: str = "session",
        transports: str | Sequence[str] | None = None,
        clock: Clock | None = None,
        users: Mapping[str, Sequence[str]] | None = None,
        password: str = PASSWORD,
        auth: Auth | None = None,
        base_url: str = BASE,
        lifespan: bool = True,
        cls: type[A] = RunningApp,  # type: ignore[assignment]
        **overrides: Any,
    ) -> A:
        """The reference server over a fresh ``store``, its lifespan running.

        ``users`` (name -> roles) are created before it starts, with ``password``. ``auth``
        serves an :class:`Auth` the test built itself (then ``store`` is unused and the test
        owns it when ``lifespan=False``). ``cls``: a :class:`RunningApp` subclass with a test
        module's own shortcuts.
        """
        built = auth is None
        if auth is None:
            if transports is not None:
                overrides["transports"] = transports  # "bearer,cookie" or a list
            settings = self.settings(store, strategy=strategy, **overrides)
            auth = await build_auth(
                settings, clock=clock if clock is not None else ManualClock(), hasher=self.hasher
            )
        else:
            settings = Settings(**overrides)
        ids: dict[str, str] = {}
        try:
            for name, roles in (users or {}).items():
                ids[name] = (await auth.users.create_user(name, password, list(roles))).id
            app = create_app(settings, auth=auth)
        except BaseException:
            if built:
                await auth.close()
            raise
        stack = contextlib.AsyncExitStack()
        self._stack.push_async_callback(stack.aclose)
        if lifespan:
            # The lifespan starts the Auth and closes it on the way out (also when start fails).
            await stack.enter_async_context(app.router.lifespan_context(app))
        elif built:
            stack.push_async_callback(auth.close)
        client = await stack.enter_async_context(asgi_client(app, base_url=base_url))
        return cls(
            client=client,
            auth=auth,
            settings=app.state.settings,
            clock=auth.clock,  # type: ignore[arg-type]
            app=app,
            base_url=base_url,
            password=password,
            users=ids,
            _stack=stack,
        )

    async def aclose(self) -> None:
        """Close every app and auth (newest first), the hasher, then drop the backends."""
        await self._stack.aclose()


# --- the same, from sync code -----------------------------------------------------------------


class SyncApps:
    """:class:`Apps` on a private event loop, for sync tests such as hypothesis ones (which
    cannot be coroutines): ``apps.run(coro)`` runs a coroutine on that loop.

    ``with SyncApps(request, tmp) as apps: app = apps(...)`` closes everything on the way out.
    """

    def __init__(self, request: pytest.FixtureRequest, tmp: Path) -> None:
        self.loop = asyncio.new_event_loop()
        self.apps = Apps(Backends(request, tmp))

    def run(self, coro: Coroutine[Any, Any, Any]) -> Any:
        return self.loop.run_until_complete(coro)

    def __call__(self, store: str = "memory", **options: Any) -> RunningApp:
        made: RunningApp = self.run(self.apps(store, **options))
        return made

    def close(self) -> None:
        try:
            self.run(self.apps.aclose())
        finally:
            self.loop.close()

    def __enter__(self) -> SyncApps:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
