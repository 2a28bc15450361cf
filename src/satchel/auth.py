"""The facade: one :class:`Auth` = transports + strategy + stores + policy."""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

from satchel.accounts.throttle import LoginThrottle, LoginThrottled
from satchel.accounts.users import UserService
from satchel.audit import AuditEvent, AuditLog
from satchel.clock import Clock, system_clock
from satchel.dbsc.enforce import require_bound
from satchel.dpop.binding import require_unbound
from satchel.errors import (
    AmbiguousCredentials,
    AuthenticationError,
    ConfigurationError,
    MissingCredential,
    NotFound,
    NotSupported,
    SatchelError,
)
from satchel.identity import Identity
from satchel.stores.base import SessionRecord, UserRecord
from satchel.strategies.auth_methods import PWD, combine
from satchel.strategies.base import LoginContext, Strategy, SupportsRefresh, SupportsSessions
from satchel.strategies.session_policy import is_remembered
from satchel.transports.base import HeaderPairs, IssuedCredentials, RawHeaders, Transport

if TYPE_CHECKING:
    from satchel.accounts.mfa.service import MfaService
    from satchel.dbsc.binding import DeviceBinding
    from satchel.dpop.guard import DPoPGuard
    from satchel.keys.manager import KeyManager
    from satchel.revocation.base import RevocationBus
    from satchel.transports.csrf import CSRFProtect


@dataclass(frozen=True, slots=True, repr=False)
class LoginResult:
    """A successful login: who, and the credentials to hand over."""

    identity: Identity
    credentials: IssuedCredentials

    def __repr__(self) -> str:
        return f"LoginResult({self.identity!r})"


class Auth:
    """Authentication for one application: a strategy, its transports, the users, and the
    protections every login and cookie request goes through.

    Credential precedence (documented, fail-closed): every configured transport is asked;
    if none finds a credential the request is anonymous; if several find credentials that
    differ, the request is rejected with ``ambiguous_credentials`` rather than picking one.

    Built from parts or by :func:`satchel.build_auth`, an ``Auth`` has the same protections
    (``docs/library.md``): ``throttle`` defaults to the in-process
    :class:`~satchel.accounts.throttle.LoginThrottle`; ``csrf`` is required with the cookie
    transport (``ConfigurationError`` otherwise, never a silent skip); ``keys`` are what the
    JWKS publishes, ``bus`` the revocation channel it starts and closes, ``audit`` the log,
    ``mfa`` second factors and step-up (:mod:`satchel.accounts.mfa`; None: password only),
    ``dbsc`` device-bound cookie sessions (:mod:`satchel.dbsc`; set by ``build_auth``),
    ``dpop`` DPoP proofs (:mod:`satchel.dpop`; None: no DPoP). ``Auth`` owns its parts:
    :meth:`close` closes the strategy, the user store, the bus and the throttle.
    """

    dpop: DPoPGuard | None = None

    def __init__(
        self,
        *,
        strategy: Strategy,
        transports: Sequence[Transport],
        users: UserService,
        csrf: CSRFProtect | None = None,
        throttle: LoginThrottle | None = None,
        keys: KeyManager | None = None,
        bus: RevocationBus | None = None,
        audit: AuditLog | None = None,
        mfa: MfaService | None = None,
        clock: Clock = system_clock,
    ) -> None:
        if not transports:
            raise ConfigurationError("Auth needs at least one transport.")
        names = [t.name for t in transports]
        if len(set(names)) != len(names):
            raise ConfigurationError("Each transport may be configured once.")
        if "cookie" in names and csrf is None:
            raise ConfigurationError(
                "The cookie transport needs CSRF protection: pass "
                "csrf=await CSRFProtect.load(key_store) (or CSRFProtect(secret)) to Auth."
            )
        if "cookie" not in names:
            csrf = None  # bearer requests are not forgeable by a third-party page
        self.strategy = strategy
        self.transports = tuple(transports)
        self.transport_by_name = {t.name: t for t in transports}
        self.users = users
        self.csrf: CSRFProtect | None = csrf
        self.throttle: LoginThrottle = throttle or LoginThrottle(clock=clock)
        self.keys: KeyManager | None = keys
        self.bus: RevocationBus | None = bus
        self.audit: AuditLog = audit or AuditLog()
        self.clock = clock
        self.mfa: MfaService | None = mfa
        self.dbsc: DeviceBinding | None = None
        if mfa is not None:
            mfa.bind(self)
        self.refresher: SupportsRefresh | None = (
            strategy if isinstance(strategy, SupportsRefresh) else None
        )
        self.sessions: SupportsSessions | None = (
            strategy if isinstance(strategy, SupportsSessions) else None
        )

    @property
    def can_refresh(self) -> bool:
        """True when logins hand out refresh tokens (``/auth/refresh`` works)."""
        return self.refresher is not None

    @property
    def keeps_sessions(self) -> bool:
        """True when sessions are server-side records that can be listed and ended one by one."""
        return self.sessions is not None

    def _session_keeper(self) -> SupportsSessions:
        if self.sessions is None:
            raise NotSupported("This strategy keeps no server-side sessions.")
        return self.sessions

    # --- life cycle -----------------------------------------------------------------------

    async def start(self) -> None:
        """Connect the revocation bus, load keys and subscribe; call once before serving."""
        if self.bus is not None:
            await self.bus.start()
        await self.strategy.start()

    async def close(self) -> None:
        """Stop background work and close what this object owns."""
        try:
            await self.strategy.close()
            if self.bus is not None:
                await self.bus.close()
        finally:
            await self.users.close()
            await self.throttle.close()

    async def probe(self) -> None:
        """One cheap read of each store (health checks); raises when one does not answer."""
        await self.users.store.get_user("-healthz-")

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
        common case of public routes, and raising costs more than the lookup itself."""
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
        """The identity and transport of the request's credential; DPoP-bound tokens are refused."""
        transport, token = self.extract(headers, only=only)
        identity = await self.strategy.authenticate(token)
        require_bound(self.dbsc, identity, transport.name, headers)
        require_unbound(identity.jkt)  # a DPoP proof needs the request: integrations/dpop.py
        return identity, transport

    async def authenticate(
        self, headers: RawHeaders, *, only: Collection[str] | None = None
    ) -> Identity:
        """The identity behind the request's credential; raises if there is none."""
        return (await self.resolve(headers, only=only))[0]

    # --- login / logout -------------------------------------------------------------------

    async def login(
        self, username: str, password: str, ctx: LoginContext | None = None
    ) -> LoginResult:
        """Check the password and issue a brand-new credential.

        Unknown user, wrong password and disabled account raise the same
        :class:`satchel.errors.InvalidLogin`. When a second factor is due the right password
        raises :class:`~satchel.accounts.mfa.errors.MfaRequired` (with its ``mfa_token``).
        """
        ctx = ctx or LoginContext()
        # Checked before the password: during a lockout the right one gets a wrong one's answer.
        try:
            await self.throttle.check(username, ctx.ip)
        except LoginThrottled as exc:
            await self.audit.emit(
                AuditEvent("throttled", username=username, ip=ctx.ip, reason=exc.scope)
            )
            raise
        try:
            user = await self.users.verify_login(username, password)
        except SatchelError as exc:
            if isinstance(exc, AuthenticationError):
                await self.throttle.failure(username, ctx.ip)
            await self.audit.emit(
                AuditEvent("login.failure", username=username, ip=ctx.ip, reason=exc.code)
            )
            raise
        ctx = replace(ctx, amr=frozenset({PWD}))
        if self.mfa is not None:  # raises MfaRequired when a second factor is due
            await self.mfa.after_password(user, ctx)
        return await self.issue_login(user, ctx)

    async def issue_login(self, user: UserRecord, ctx: LoginContext) -> LoginResult:
        """A new credential for ``user``, whose authentication (``ctx.amr``) is complete."""
        identity, issued = await self.strategy.issue(user, ctx)
        await self.audit.emit(
            AuditEvent(
                "login.success",
                user_id=user.id,
                username=user.username,
                session=identity.session_id,
                ip=ctx.ip,
                extra={"amr": " ".join(sorted(ctx.amr))},
            )
        )
        return LoginResult(identity, issued)

    async def refresh(self, refresh_token: str, ctx: LoginContext | None = None) -> LoginResult:
        """Rotate a refresh token into a new credential pair (hybrid strategy)."""
        if self.refresher is None:
            raise NotSupported("This strategy has no refresh tokens.")
        identity, issued = await self.refresher.refresh(refresh_token, ctx or LoginContext())
        event = AuditEvent("refresh", user_id=identity.user_id, session=identity.session_id)
        await self.audit.emit(event)
        return LoginResult(identity, issued)

    async def logout(self, identity: Identity) -> None:
        """End the caller's credential (idempotent)."""
        await self.strategy.logout(identity)
        sid = identity.session_id
        await self.audit.emit(AuditEvent("logout", user_id=identity.user_id, session=sid))

    def login_headers(self, result: LoginResult, transport: str) -> HeaderPairs:
        """Response headers handing ``result`` to the client over ``transport``."""
        return self.transport(transport).login_headers(result.credentials)

    def logout_headers(self, transport: str) -> HeaderPairs:
        """Response headers clearing the credential of ``transport``."""
        return self.transport(transport).logout_headers()

    # --- sessions -------------------------------------------------------------------------

    async def list_sessions(self, user_id: str) -> list[SessionRecord]:
        """The user's live sessions."""
        return await self._session_keeper().list_sessions(user_id)

    async def list_all_sessions(self, *, limit: int = 100, offset: int = 0) -> list[SessionRecord]:
        """Every live session, newest first (administration)."""
        return await self._session_keeper().list_all_sessions(limit=limit, offset=offset)

    async def revoke_session(
        self, session_id: str, *, user_id: str | None = None, actor: Identity | None = None
    ) -> None:
        """End one session; with ``user_id``, only one of that user's (else NotFound)."""
        if not await self._session_keeper().revoke_session(session_id, user_id=user_id):
            raise NotFound("No such session.")
        event = AuditEvent("revoke", user_id=user_id, session=session_id, actor=_actor(actor))
        await self.audit.emit(event)

    async def revoke_other_sessions(self, identity: Identity) -> list[str]:
        """End every session of the caller except the current one."""
        keeper = self._session_keeper()
        ended = await keeper.revoke_user_sessions(identity.user_id, keep=identity.session_id)
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
        event = AuditEvent("revoke", user_id=user_id, actor=_actor(actor), reason="all")
        await self.audit.emit(event)

    # --- account changes ------------------------------------------------------------------

    async def change_password(
        self,
        identity: Identity,
        current: str,
        new: str,
        ctx: LoginContext | None = None,
    ) -> LoginResult:
        """Change the caller's password (the current one is required) and re-issue.

        Every credential of the user issued so far ends, on every strategy (the user's
        ``valid_after`` moves to now); the caller gets a brand-new credential, so the session
        id changes too (S02, P05). A wrong current password raises ``InvalidLogin``. The new
        credential keeps the caller's "remember this device" choice, whichever route it took.
        """
        ctx = ctx or LoginContext()
        if not ctx.remember and await self._remembered(identity):
            ctx = replace(ctx, remember=True)
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
        ctx = replace(ctx, amr=combine(identity.amr, {PWD}))
        issued_identity, issued = await self.strategy.issue(user, ctx)
        sid = issued_identity.session_id
        await self.audit.emit(AuditEvent("password.changed", user_id=user.id, session=sid))
        return LoginResult(issued_identity, issued)

    async def _remembered(self, identity: Identity) -> bool:
        """Whether the caller's own session was a "remember this device" sign-in."""
        if self.sessions is None or identity.session_id is None:
            return False
        records = await self.sessions.list_sessions(identity.user_id)
        return any(r.id == identity.session_id and is_remembered(r) for r in records)

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
                actor=_actor(actor),
                extra={"roles": ",".join(sorted(user.roles))},
            )
        )

    async def set_disabled(
        self, user_id: str, disabled: bool, *, actor: Identity | None = None
    ) -> None:
        """Disable (ending every credential at once) or re-enable an account."""
        user = await self.users.set_disabled(user_id, disabled)
        await self.strategy.user_changed(user)
        name = "user.disabled" if disabled else "user.enabled"
        await self.audit.emit(AuditEvent(name, user_id=user_id, actor=_actor(actor)))


def _actor(actor: Identity | None) -> str | None:
    return actor.user_id if actor else None
