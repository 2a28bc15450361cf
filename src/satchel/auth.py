"""The facade: one :class:`Auth` = transports + strategy + stores + policy."""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from satchel.accounts.users import UserService
from satchel.audit import AuditEvent, AuditLog
from satchel.clock import Clock, system_clock
from satchel.errors import (
    AmbiguousCredentials,
    AuthenticationError,
    ConfigurationError,
    MissingCredential,
    NotFound,
    SatchelError,
    Throttled,
)
from satchel.identity import Identity
from satchel.stores.base import SessionRecord
from satchel.strategies.base import LoginContext, Strategy
from satchel.transports.base import HeaderPairs, IssuedCredentials, RawHeaders, Transport

if TYPE_CHECKING:  # the throttle needs the optional ``limits`` package
    from satchel.accounts.throttle import LoginThrottle


@dataclass(frozen=True, slots=True, repr=False)
class LoginResult:
    """A successful login: who, and the credentials to hand over."""

    identity: Identity
    credentials: IssuedCredentials

    def __repr__(self) -> str:
        return f"LoginResult({self.identity!r})"


class Auth:
    """Authentication for one application.

    Credential precedence (documented, fail-closed): every configured transport is asked;
    if none finds a credential the request is anonymous; if several find credentials that
    differ, the request is rejected with ``ambiguous_credentials`` rather than picking one.
    """

    def __init__(
        self,
        *,
        strategy: Strategy,
        transports: Sequence[Transport],
        users: UserService,
        audit: AuditLog | None = None,
        clock: Clock = system_clock,
        throttle: LoginThrottle | None = None,
    ) -> None:
        if not transports:
            raise ConfigurationError("Auth needs at least one transport.")
        names = [t.name for t in transports]
        if len(set(names)) != len(names):
            raise ConfigurationError("Each transport may be configured once.")
        self.strategy = strategy
        self.transports = tuple(transports)
        self.transport_by_name = {t.name: t for t in transports}
        self.users = users
        self.audit = audit or AuditLog()
        self.clock = clock
        self.throttle = throttle

    # --- life cycle -----------------------------------------------------------------------

    async def start(self) -> None:
        """Load keys and subscribe to revocations; call once before serving."""
        await self.strategy.start()

    async def close(self) -> None:
        """Stop background work and close the stores."""
        await self.strategy.close()
        await self.users.close()

    # --- requests -------------------------------------------------------------------------

    def transport(self, name: str) -> Transport:
        """The configured transport called ``name``."""
        try:
            return self.transport_by_name[name]
        except KeyError:
            raise ConfigurationError(f"transport {name!r} is not configured") from None

    def find_credential(
        self, headers: RawHeaders, *, only: Collection[str] | None = None
    ) -> tuple[Transport, str] | None:
        """The single credential in ``headers`` and its transport, or None when there is none.

        Like :meth:`extract`, but an anonymous request is not an exception: that is the
        common case of public routes, and raising costs more than the lookup itself.
        """
        found: tuple[Transport, str] | None = None
        for transport in self.transports:
            if only is not None and transport.name not in only:
                continue
            token = transport.extract(headers)
            if token is None:
                continue
            if found is None:
                found = (transport, token)
            elif found[1] != token:
                raise AmbiguousCredentials("The request carries two different credentials.")
        return found

    def extract(
        self, headers: RawHeaders, *, only: Collection[str] | None = None
    ) -> tuple[Transport, str]:
        """The single credential in ``headers`` and the transport that carried it."""
        found = self.find_credential(headers, only=only)
        if found is None:
            raise MissingCredential("Authentication required.")
        return found

    async def resolve(
        self, headers: RawHeaders, *, only: Collection[str] | None = None
    ) -> tuple[Identity, Transport]:
        """Authenticate a request; returns the identity and the transport it came on."""
        transport, token = self.extract(headers, only=only)
        return await self.strategy.authenticate(token), transport

    async def authenticate(
        self, headers: RawHeaders, *, only: Collection[str] | None = None
    ) -> Identity:
        """The identity behind the request's credential; raises if there is none."""
        identity, _ = await self.resolve(headers, only=only)
        return identity

    # --- login / logout -------------------------------------------------------------------

    async def login(
        self, username: str, password: str, ctx: LoginContext | None = None
    ) -> LoginResult:
        """Check the password and issue a brand-new credential.

        Unknown user, wrong password and disabled account raise the same
        :class:`satchel.errors.InvalidLogin`.
        """
        ctx = ctx or LoginContext()
        throttle = self.throttle
        if throttle is not None:
            # Before the password is looked at: during a lockout the right password gets the
            # same answer as a wrong one.
            try:
                await throttle.check(username, ctx.ip)
            except Throttled as exc:
                await self.audit.emit(
                    AuditEvent(
                        "throttled",
                        username=username,
                        ip=ctx.ip,
                        reason=getattr(exc, "scope", None),
                    )
                )
                raise
        try:
            user = await self.users.verify_login(username, password)
        except SatchelError as exc:
            if throttle is not None and isinstance(exc, AuthenticationError):
                await throttle.failure(username, ctx.ip)
            await self.audit.emit(
                AuditEvent("login.failure", username=username, ip=ctx.ip, reason=exc.code)
            )
            raise
        identity, issued = await self.strategy.issue(user, ctx)
        await self.audit.emit(
            AuditEvent(
                "login.success",
                user_id=user.id,
                username=user.username,
                session=identity.session_id,
                ip=ctx.ip,
            )
        )
        return LoginResult(identity, issued)

    async def refresh(self, refresh_token: str, ctx: LoginContext | None = None) -> LoginResult:
        """Rotate a refresh token into a new credential pair (hybrid strategy)."""
        identity, issued = await self.strategy.refresh(refresh_token, ctx or LoginContext())
        await self.audit.emit(
            AuditEvent("refresh", user_id=identity.user_id, session=identity.session_id)
        )
        return LoginResult(identity, issued)

    async def logout(self, identity: Identity) -> None:
        """End the caller's credential (idempotent)."""
        await self.strategy.logout(identity)
        await self.audit.emit(
            AuditEvent("logout", user_id=identity.user_id, session=identity.session_id)
        )

    def login_headers(self, result: LoginResult, transport: str) -> HeaderPairs:
        """Response headers handing ``result`` to the client over ``transport``."""
        return self.transport(transport).login_headers(result.credentials)

    def logout_headers(self, transport: str) -> HeaderPairs:
        """Response headers clearing the credential of ``transport``."""
        return self.transport(transport).logout_headers()

    # --- sessions -------------------------------------------------------------------------

    async def list_sessions(self, user_id: str) -> list[SessionRecord]:
        """The user's live sessions."""
        return await self.strategy.list_sessions(user_id)

    async def revoke_session(
        self, session_id: str, *, user_id: str | None = None, actor: Identity | None = None
    ) -> None:
        """End one session; with ``user_id``, only one of that user's (else NotFound)."""
        if not await self.strategy.revoke_session(session_id, user_id=user_id):
            raise NotFound("No such session.")
        await self.audit.emit(
            AuditEvent(
                "revoke",
                user_id=user_id,
                session=session_id,
                actor=actor.user_id if actor else None,
            )
        )

    async def revoke_other_sessions(self, identity: Identity) -> list[str]:
        """End every session of the caller except the current one."""
        ended = await self.strategy.revoke_user_sessions(identity.user_id, keep=identity.session_id)
        await self.audit.emit(
            AuditEvent(
                "revoke",
                user_id=identity.user_id,
                actor=identity.user_id,
                reason="others",
                extra={"count": len(ended)},
            )
        )
        return ended

    async def revoke_user_sessions(self, user_id: str, *, actor: Identity | None = None) -> None:
        """End every credential of a user, on every strategy (stateless ones included).

        The user's ``valid_after`` moves to now, so signed tokens issued earlier stop
        verifying too.
        """
        user = await self.users.invalidate_credentials(user_id)
        await self.strategy.user_changed(user)
        await self.audit.emit(
            AuditEvent(
                "revoke",
                user_id=user_id,
                actor=actor.user_id if actor else None,
                reason="all",
            )
        )

    # --- account changes ------------------------------------------------------------------

    async def change_password(
        self,
        identity: Identity,
        current: str,
        new: str,
        ctx: LoginContext | None = None,
    ) -> LoginResult:
        """Change the caller's password (the current one is required) and re-issue.

        Every credential of the user issued so far ends, on every strategy (the
        user's ``valid_after`` moves to now); the caller gets a brand-new credential, so the
        session id changes too (S02, P05). A wrong current password raises
        :class:`satchel.errors.InvalidLogin`.
        """
        try:
            user = await self.users.change_password(identity.user_id, current, new)
        except SatchelError as exc:
            await self.audit.emit(
                AuditEvent(
                    "password.change_failed",
                    user_id=identity.user_id,
                    session=identity.session_id,
                    reason=exc.code,
                )
            )
            raise
        # Ends every credential issued up to the new valid_after, the caller's included.
        await self.strategy.user_changed(user)
        issued_identity, issued = await self.strategy.issue(user, ctx or LoginContext())
        await self.audit.emit(
            AuditEvent(
                "password.changed",
                user_id=user.id,
                session=issued_identity.session_id,
            )
        )
        return LoginResult(issued_identity, issued)

    async def set_roles(
        self, user_id: str, roles: Collection[str], *, actor: Identity | None = None
    ) -> None:
        """Replace a user's roles and end their credentials, so the next login gets a new
        session id with the new privileges (S02)."""
        await self.users.set_roles(user_id, roles)
        user = await self.users.invalidate_credentials(user_id)
        await self.strategy.user_changed(user)
        await self.audit.emit(
            AuditEvent(
                "roles.changed",
                user_id=user_id,
                actor=actor.user_id if actor else None,
                extra={"roles": ",".join(sorted(user.roles))},
            )
        )

    async def set_disabled(
        self, user_id: str, disabled: bool, *, actor: Identity | None = None
    ) -> None:
        """Disable (ending every credential at once) or re-enable an account."""
        user = await self.users.set_disabled(user_id, disabled)
        await self.strategy.user_changed(user)
        await self.audit.emit(
            AuditEvent(
                "user.disabled" if disabled else "user.enabled",
                user_id=user_id,
                actor=actor.user_id if actor else None,
            )
        )
