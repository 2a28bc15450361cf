"""What a credential is: the strategy interface."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Collection
from dataclasses import dataclass
from typing import ClassVar, Protocol, runtime_checkable

from satchel.errors import NotSupported
from satchel.identity import Identity
from satchel.stores.base import SessionRecord, UserRecord
from satchel.strategies.counters import Counters
from satchel.transports.base import IssuedCredentials


@dataclass(frozen=True, slots=True)
class LoginContext:
    """Facts about the client at login, recorded on stateful sessions.

    ``amr`` are the authentication methods of the login (RFC 8176, see
    :mod:`satchel.strategies.auth_methods`); they reach the identity and every token.
    ``transport`` is the transport the login was asked for on, when the route knows it (a
    login finished in a second step answers on the same one). ``dpop_jkt`` is the
    thumbprint of the DPoP key the token request proved (RFC 9449): the credentials issued
    are bound to it (:mod:`satchel.strategies.key_binding`).
    """

    ip: str | None = None
    user_agent: str | None = None
    remember: bool = False
    amr: frozenset[str] = frozenset()
    transport: str | None = None
    dpop_jkt: str | None = None


class UserLookup(Protocol):
    """Reads an account by id (a :class:`~satchel.stores.base.UserStore` is one)."""

    async def get_user(self, user_id: str) -> UserRecord | None:
        """The user, or None."""
        ...


class Strategy(ABC):
    """Issues and verifies credentials. Every method may raise a :class:`SatchelError`."""

    #: ``"session"``, ``"jwt"`` or ``"hybrid"``.
    name: ClassVar[str]
    #: True when the server keeps a record per login (sessions can be listed).
    stateful: ClassVar[bool]

    counters: Counters

    async def start(self) -> None:
        """Load keys, subscribe to revocations. Called once before serving."""
        return None

    async def close(self) -> None:
        """Stop background work."""
        return None

    @abstractmethod
    async def issue(
        self, user: UserRecord, ctx: LoginContext
    ) -> tuple[Identity, IssuedCredentials]:
        """Create a credential for ``user`` (a brand-new session id every time)."""

    @abstractmethod
    async def authenticate(self, token: str) -> Identity:
        """Verify an access credential; raise :class:`AuthenticationError` if it is not valid."""

    def authenticate_cached(self, token: str) -> Identity | None:
        """The answer for a repeated credential from this process's memory alone, or None.

        Pure: no I/O, no await, no lock, so a synchronous caller (a WSGI thread) may call it
        directly. Returns the identity only when :meth:`authenticate` would return it from
        its cache without any store read (the cache is trusted: the revocation bus reaches
        every process and is healthy); raises :class:`AuthenticationError` when memory alone
        already refuses it (a revocation seen on the bus); None means "ask
        :meth:`authenticate`", which also covers every first-seen credential. Strategies call
        it first in :meth:`authenticate`, so both worlds run the same checks.
        """
        return None

    @abstractmethod
    async def logout(self, identity: Identity) -> None:
        """End the credential behind ``identity``; idempotent."""

    async def reauthenticated(
        self, identity: Identity, amr: Collection[str]
    ) -> tuple[Identity, IssuedCredentials | None]:
        """Renew the authentication of ``identity``'s session (a step-up): ``auth_time``
        becomes now and ``amr`` gains ``amr``; the session stays the same.

        Returns the renewed identity and, when the credential itself carries the time (a
        signed token), a new access credential for the same session (no new refresh token).
        Raises :class:`~satchel.errors.InvalidCredential` when the session has ended.
        """
        raise NotSupported("This strategy cannot renew an authentication.")

    async def user_changed(self, user: UserRecord) -> None:
        """React to a change of the account (disabled, roles, ``valid_after``).

        Implementations end the credentials that the change invalidates and publish the
        revocation so every process drops them.
        """
        return None


# What a strategy can do beyond the base interface is said by the methods it has, checked
# once with ``isinstance`` when an :class:`~satchel.Auth` is built — never by calling a method
# and catching an exception, which hides real errors and costs a raise per request.


@runtime_checkable
class SupportsRefresh(Protocol):
    """A strategy whose logins also hand out a rotating refresh token."""

    async def refresh(
        self, refresh_token: str, ctx: LoginContext
    ) -> tuple[Identity, IssuedCredentials]:
        """Exchange a refresh token for a new credential pair (the old one is used up)."""
        ...


@runtime_checkable
class SupportsSessions(Protocol):
    """A strategy that keeps a server-side record per login: sessions can be listed and ended."""

    async def revoke_session(self, session_id: str, *, user_id: str | None = None) -> bool:
        """End one session. With ``user_id``, only if it belongs to that user."""
        ...

    async def revoke_user_sessions(self, user_id: str, *, keep: str | None = None) -> list[str]:
        """End every session of ``user_id`` except ``keep``; returns the ended ids."""
        ...

    async def list_sessions(self, user_id: str) -> list[SessionRecord]:
        """The user's live sessions, oldest first."""
        ...

    async def list_all_sessions(self, *, limit: int = 100, offset: int = 0) -> list[SessionRecord]:
        """Every live session, newest first (administration)."""
        ...
