"""Which store a data command works on, and opening only what the command needs.

Data commands (``users``, ``sessions``, ``keys``) change the store a server or an app
uses, so they refuse what would quietly change something else: ``memory://`` (gone when
the command ends) and the default ``./satchel.db`` when that file does not exist (the app
keeps its users elsewhere; creating an empty file here would hide that). Each prints the
store it used on standard error. User and session commands never load or create signing
keys: that belongs to ``serve`` and ``keys``.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import TYPE_CHECKING, TypeVar

import typer

from satchel.cli.app import DEFAULT_STORE, EXIT_USAGE, fail, flag_label, run, run_sync, settings_for
from satchel.errors import ConfigurationError

if TYPE_CHECKING:
    from satchel.accounts.users import UserService
    from satchel.auth import Auth
    from satchel.config.settings import Settings
    from satchel.stores.base import Stores

_T = TypeVar("_T")


def is_memory(url: str) -> bool:
    """True for a ``memory://`` URL (any spelling of the scheme)."""
    return url.split(":", 1)[0].strip().lower() == "memory"


def shown_store(settings: Settings) -> str:
    """The store URL(s) of ``settings`` with any password masked, for messages."""
    from satchel.stores import redact_url

    text = redact_url(settings.store)
    if settings.store.lower().startswith("sqlite:///"):
        path = Path(settings.store[len("sqlite:///") :])
        if not path.is_absolute():
            text += f" ({Path.cwd() / path})"
    if settings.sessions_store and settings.sessions_store != settings.store:
        text += f", sessions: {redact_url(settings.sessions_store)}"
    return text


async def open_for(settings: Settings, label: str) -> Stores:
    """The stores of ``settings``; a bad URL is reported under ``label`` (``--store``)."""
    from satchel.stores import open_stores

    try:
        return await open_stores(
            settings.store,
            sessions_url=settings.sessions_store,
            prefix=settings.key_prefix,
            schema=settings.pg_schema,
        )
    except ConfigurationError as exc:
        if settings.sessions_store is not None:
            raise  # either URL may be the bad one; the message says which part is wrong
        raise ConfigurationError(f"{label}: {exc.detail}") from None


class Target:
    """The checked store of one data command; opens it, the users or an admin :class:`Auth`."""

    def __init__(self, settings: Settings, label: str) -> None:
        self.settings = settings
        self.label = label
        self.opened = False

    def run(self, main: Callable[[], Awaitable[_T]]) -> _T:
        """:func:`~satchel.cli.app.run` the command body, then print ``store: URL`` (once
        the store was opened: the line says where the command looked, even if it failed)."""
        return run(main, after=self.note)

    def note(self) -> str | None:
        """``store: URL`` (password masked) once the store was opened, else None."""
        return f"store: {shown_store(self.settings)}" if self.opened else None

    @asynccontextmanager
    async def stores(self) -> AsyncIterator[Stores]:
        """The raw stores of the command."""
        stores = await open_for(self.settings, self.label)
        self.opened = True
        try:
            yield stores
        finally:
            await stores.close()

    @asynccontextmanager
    async def users(self) -> AsyncIterator[UserService]:
        """A user service on the user store alone (no strategy, no keys, no bus)."""
        from satchel.accounts.passwords import PasswordHasher
        from satchel.accounts.users import UserService
        from satchel.stores.deadline import with_deadline

        async with self.stores() as stores:
            bounded = with_deadline(stores, self.settings.store_timeout)
            hasher = PasswordHasher()
            try:
                yield UserService(bounded.users, hasher)
            finally:
                hasher.close()

    @asynccontextmanager
    async def auth(self) -> AsyncIterator[Auth]:
        """An :class:`Auth` for revoking and disabling: the configured strategy and the
        revocation bus over the stores, with signing keys never loaded nor created.

        Revocation, listing and account changes sign nothing, so the strategy is not
        started; the bus is, so that every change reaches the running servers.
        """
        from satchel.accounts.passwords import PasswordHasher
        from satchel.accounts.users import UserService
        from satchel.audit import AuditLog
        from satchel.auth import Auth
        from satchel.config.build import build_strategy, choose_bus
        from satchel.keys.manager import KeyManager
        from satchel.stores.deadline import with_deadline
        from satchel.transports.bearer import BearerTransport

        settings = self.settings
        async with self.stores() as stores:
            bus = choose_bus(settings, stores)
            bounded = with_deadline(stores, settings.store_timeout)
            audit = AuditLog()
            keys = KeyManager(bounded.keys, alg=settings.jwt_alg)  # never loaded
            strategy = build_strategy(settings, bounded, bus, keys, audit=audit)
            hasher = PasswordHasher()
            auth = Auth(
                strategy=strategy,
                # It serves no requests; the cookie transport would want a CSRF secret,
                # which the CLI must not create either.
                transports=[BearerTransport(realm=settings.issuer)],
                users=UserService(bounded.users, hasher),
                audit=audit,
            )
            try:
                await bus.start()
                yield auth
            finally:
                try:
                    await strategy.close()
                    await bus.close()
                    await auth.throttle.close()
                finally:
                    hasher.close()


def target(
    ctx: typer.Context, *, store: str, strategy: str | None = None, sessions: bool = False
) -> Target:
    """Check the store a data command was pointed at; exit with a usage error if it would
    change nothing that lasts, or would create a store nobody asked for.

    ``sessions``: the command reads or changes sessions too, so the sessions store
    (``SATCHEL_SESSIONS_STORE``) must not be ``memory://`` either.
    """
    settings = settings_for(ctx, store=store, strategy=strategy)
    label = flag_label(ctx, "store")
    if is_memory(settings.store):
        fail(
            f"{label} memory:// lives only as long as this one command, so nothing would "
            "be kept; give the store your server or app uses, e.g. --store sqlite:///app.db.",
            EXIT_USAGE,
        )
    if sessions and settings.sessions_store is not None and is_memory(settings.sessions_store):
        fail(
            "SATCHEL_SESSIONS_STORE is memory://: those sessions live inside the server "
            "process, out of reach of this command.",
            EXIT_USAGE,
        )
    if settings.store.lower().startswith("sqlite:"):
        _check_sqlite_file(ctx, settings.store, label)
    return Target(settings, label)


def _check_sqlite_file(ctx: typer.Context, url: str, label: str) -> None:
    from satchel.stores import sqlite_path

    def path_of() -> Path:
        try:
            return Path(sqlite_path(url))
        except ConfigurationError as exc:
            raise ConfigurationError(f"{label}: {exc.detail}") from None

    path = run_sync(path_of)
    if path.exists():
        return
    source = ctx.get_parameter_source("store")
    if source is None or source.name == "DEFAULT":
        fail(
            f"No --store given, and the default store {DEFAULT_STORE} ({Path.cwd() / path}) "
            "does not exist; pass --store URL (or set SATCHEL_STORE) naming the store "
            "your server or app uses.",
            EXIT_USAGE,
        )
    if not path.parent.is_dir():
        fail(f"{label}: the folder {path.parent} does not exist.", EXIT_USAGE)
