"""The second-factor service of an :class:`~satchel.Auth`: logins that need a second
factor, the factors a signed-in user manages, step-up, and an admin's reset.

:meth:`MfaService.after_password` is called by :meth:`Auth.login` once the password is
right: when the policy (:mod:`satchel.accounts.mfa.policy`) wants a second factor it stores
a pending login and raises :class:`~satchel.accounts.mfa.errors.MfaRequired` with its
``mfa_token``; :meth:`verify` (a TOTP or recovery code) or the passkey ceremony
(:mod:`satchel.accounts.mfa.passkey_flow`) finishes it with the real credential.

Every change to an account's factors needs a fresh authentication (:meth:`check_fresh`,
``fresh_age`` seconds, checked here and not only by the routes), and every code check is
throttled per account and per address before it is made.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

from satchel.accounts.mfa import pending as pending_mod
from satchel.accounts.mfa.codes import Codes, TotpSetup
from satchel.accounts.mfa.documents import FactorDocuments
from satchel.accounts.mfa.errors import (
    InvalidCode,
    InvalidMfaToken,
    MfaDisabled,
    MfaRequired,
    ReauthenticationRequired,
)
from satchel.accounts.mfa.pending import Finished, PendingLogin
from satchel.accounts.mfa.policy import Enrolled, MfaMode, is_fresh, login_step
from satchel.accounts.throttle import LoginThrottle, LoginThrottled, ThrottlePolicy
from satchel.audit import AuditEvent
from satchel.clock import Clock, system_clock
from satchel.errors import ConfigurationError, CorruptRecord, InvalidLogin, NotFound
from satchel.identity import Identity
from satchel.stores.base import KeyStore, UserRecord
from satchel.stores.factors import FactorStore
from satchel.strategies.auth_methods import OTP, PWD, combine
from satchel.strategies.base import LoginContext
from satchel.transports.base import IssuedCredentials

if TYPE_CHECKING:
    from satchel.accounts.mfa.passkey_flow import Passkeys
    from satchel.auth import Auth


@dataclass(frozen=True, slots=True)
class MfaConfig:
    """The second-factor settings (``SATCHEL_MFA*``, ``SATCHEL_FRESH_AGE``,
    ``SATCHEL_WEBAUTHN_*``)."""

    mode: MfaMode = MfaMode.OPTIONAL
    #: Seconds a sign-in or step-up stays fresh for sensitive actions.
    fresh_age: int = 300
    #: Seconds an mfa_token (a half-finished login) lives.
    token_ttl: float = 300.0
    #: The name authenticator apps show next to the account.
    issuer: str = "satchel"
    #: WebAuthn relying party: its id (a domain), its name, the origins allowed to use it.
    rp_id: str = "localhost"
    rp_name: str = "satchel"
    origins: tuple[str, ...] = ("http://localhost:8000",)
    #: Seconds a WebAuthn challenge lives (single use).
    challenge_ttl: float = 300.0


def default_throttle(clock: Clock = system_clock, prefix: str = "satchel") -> LoginThrottle:
    """Failed second-factor attempts: 5 per account per 15 minutes, 20 per address a minute."""
    policy = ThrottlePolicy(account_limit=5, account_window=900, ip_limit=20, ip_window=60)
    return LoginThrottle(policy=policy, clock=clock, prefix=f"{prefix}:mfa")


class MfaService:
    """Second factors over ``store`` (factor documents, single-use records), with the keys
    that protect them in ``keys``. Bound to its :class:`Auth` by the Auth itself."""

    def __init__(
        self,
        store: FactorStore,
        keys: KeyStore,
        *,
        config: MfaConfig | None = None,
        throttle: LoginThrottle | None = None,
        clock: Clock = system_clock,
        timeout: float = 2.0,
    ) -> None:
        self.config = config or MfaConfig()
        self.clock = clock
        self.docs = FactorDocuments(store, keys, timeout=timeout)
        self.codes = Codes(self.docs, issuer=self.config.issuer, clock=clock)
        self.throttle = throttle or default_throttle(clock)
        self._auth: Auth | None = None
        self._passkeys: Passkeys | None = None

    def __repr__(self) -> str:
        return f"MfaService(mode={self.config.mode.value!r}, store={self.docs.store!r})"

    def bind(self, auth: Auth) -> None:
        """Called by :class:`Auth`: the strategy, users and audit log logins go through."""
        self._auth = auth

    @property
    def auth(self) -> Auth:
        """The :class:`Auth` this service completes logins for."""
        if self._auth is None:
            raise ConfigurationError("The MFA service is not part of an Auth.")
        return self._auth

    @property
    def passkeys(self) -> Passkeys:
        """Passkey ceremonies (:mod:`satchel.accounts.mfa.passkey_flow`)."""
        if self._passkeys is None:
            from satchel.accounts.mfa.passkey_flow import Passkeys

            self._passkeys = Passkeys(self)
        return self._passkeys

    async def close(self) -> None:
        """Release the throttle's storage."""
        await self.throttle.close()

    async def _audit(self, name: str, user_id: str | None, **fields: object) -> None:
        extra = {k: v for k, v in fields.items() if k not in ("actor", "ip", "reason", "session")}
        await self.auth.audit.emit(
            AuditEvent(
                name,
                user_id=user_id,
                actor=fields.get("actor"),  # type: ignore[arg-type]
                ip=fields.get("ip"),  # type: ignore[arg-type]
                reason=fields.get("reason"),  # type: ignore[arg-type]
                session=fields.get("session"),  # type: ignore[arg-type]
                extra=extra,
            )
        )

    # --- what an account has ----------------------------------------------------------------

    async def enrolled(self, user_id: str) -> Enrolled:
        """What the account has set up."""
        f = await self.docs.read(user_id)
        return Enrolled(
            totp=f.totp is not None, passkeys=len(f.passkeys), recovery_codes=len(f.recovery)
        )

    def _enabled(self) -> None:
        if self.config.mode is MfaMode.OFF:
            raise MfaDisabled("Second factors are turned off on this server.")

    # --- logins -----------------------------------------------------------------------------

    async def after_password(self, user: UserRecord, ctx: LoginContext) -> None:
        """Raise :class:`MfaRequired` when the policy wants a second factor of ``user``."""
        if self.config.mode is MfaMode.OFF:
            return
        step = login_step(self.config.mode, frozenset(user.roles), await self.enrolled(user.id))
        if step.kind == "done":
            return
        purpose = pending_mod.ENROLL if step.kind == "enroll" else pending_mod.LOGIN
        token = await self.start_pending(user.id, purpose, ctx)
        await self._audit("login.mfa_required", user.id, ip=ctx.ip, reason=step.kind)
        raise MfaRequired(token, step.methods, enroll=purpose == pending_mod.ENROLL)

    async def start_pending(self, user_id: str, purpose: str, ctx: LoginContext) -> str:
        """Store a half-finished login and return its ``mfa_token``."""
        now = self.clock()
        token = pending_mod.new_token()
        record = PendingLogin(
            user_id, purpose, now, ctx.amr, ctx.remember, ctx.transport, ctx.dpop_jkt
        )
        key = pending_mod.key_of(token)
        expires = now + self.config.token_ttl
        await self.docs.io(self.docs.store.put_once(key, pending_mod.encode(record), expires, now))
        return token

    async def pending(self, mfa_token: object, purpose: str) -> PendingLogin:
        """The live half-finished login of ``mfa_token`` for ``purpose`` (left in place)."""
        if not pending_mod.is_token(mfa_token):
            raise InvalidMfaToken()
        assert isinstance(mfa_token, str)  # is_token says so
        raw = await self.docs.io(
            self.docs.store.peek_once(pending_mod.key_of(mfa_token), self.clock())
        )
        try:
            found = None if raw is None else pending_mod.decode(raw)
        except CorruptRecord:
            found = None
        if found is None or found.purpose != purpose:
            raise InvalidMfaToken()
        return found

    async def finish(
        self, mfa_token: str, found: PendingLogin, amr: Collection[str], ctx: LoginContext
    ) -> Finished:
        """Use up ``mfa_token`` and issue the credential of its login, with ``amr`` added."""
        taken = await self.docs.io(
            self.docs.store.take_once(pending_mod.key_of(mfa_token), self.clock())
        )
        if taken is None:  # a racing request finished this login first
            raise InvalidMfaToken()
        try:
            user = await self.auth.users.get(found.user_id)
        except NotFound:
            raise InvalidMfaToken() from None
        # The account may have changed since the password step (disabled, new password).
        if user.disabled or found.created_at < user.valid_after:
            raise InvalidMfaToken()
        # Bound to the password step's DPoP key: only that key's holder can use the token.
        amr = combine(found.amr, amr)
        done = replace(ctx, amr=amr, remember=found.remember, dpop_jkt=found.dpop_jkt)
        return Finished(await self.auth.issue_login(user, done), found.transport)

    async def _throttled(self, user_id: str, ctx: LoginContext) -> None:
        try:
            await self.throttle.check(user_id, ctx.ip)
        except LoginThrottled as exc:
            await self._audit("mfa.throttled", user_id, ip=ctx.ip, reason=exc.scope)
            raise

    async def _failed(self, user_id: str, ctx: LoginContext, method: str) -> None:
        await self.throttle.failure(user_id, ctx.ip)
        await self._audit("mfa.failure", user_id, ip=ctx.ip, reason=method)

    async def check_code(
        self,
        user_id: str,
        ctx: LoginContext,
        *,
        code: str | None = None,
        recovery_code: str | None = None,
    ) -> frozenset[str]:
        """Check a TOTP or recovery code of ``user_id`` (throttled, each usable once): the
        methods it proves; :class:`InvalidCode` when it does not verify."""
        if (code is None) == (recovery_code is None):
            raise InvalidCode("Send either a code or a recovery code.")
        await self._throttled(user_id, ctx)
        if code is not None:
            if not await self.codes.check_totp(user_id, code):
                await self._failed(user_id, ctx, "totp")
                raise InvalidCode()
            return frozenset({OTP})
        left = await self.codes.use_recovery_code(user_id, recovery_code or "")
        if left is None:
            await self._failed(user_id, ctx, "recovery_code")
            raise InvalidCode("The recovery code is not valid or was already used.")
        await self._audit("recovery_code.used", user_id, ip=ctx.ip, remaining=left)
        return frozenset({OTP})

    async def verify(
        self,
        mfa_token: object,
        ctx: LoginContext,
        *,
        code: str | None = None,
        recovery_code: str | None = None,
    ) -> Finished:
        """Finish a login with a TOTP code or a recovery code (``POST /auth/mfa/verify``)."""
        found = await self.pending(mfa_token, pending_mod.LOGIN)
        methods = await self.check_code(found.user_id, ctx, code=code, recovery_code=recovery_code)
        assert isinstance(mfa_token, str)  # pending() checked it
        return await self.finish(mfa_token, found, methods, ctx)

    # --- setting up a TOTP, signed in or while signing in ------------------------------------

    async def _account(self, user_id: str) -> str:
        return (await self.auth.users.get(user_id)).username

    async def start_totp(self, identity: Identity) -> TotpSetup:
        """A pending TOTP for the caller (fresh authentication required)."""
        self._enabled()
        self.check_fresh(identity)
        return await self.codes.start_totp(identity.user_id, identity.username)

    async def confirm_totp(self, identity: Identity, code: str) -> list[str] | None:
        """Activate the caller's pending TOTP; fresh recovery codes when it had none."""
        self._enabled()
        self.check_fresh(identity)
        codes = await self.codes.confirm_totp(identity.user_id, code)
        await self._audit("totp.enabled", identity.user_id, session=identity.session_id)
        return codes

    async def enroll_totp(self, mfa_token: object) -> TotpSetup:
        """A pending TOTP for the account of an enrolment ``mfa_token`` (at sign-in)."""
        self._enabled()
        found = await self.pending(mfa_token, pending_mod.ENROLL)
        return await self.codes.start_totp(found.user_id, await self._account(found.user_id))

    async def finish_enrollment(self, mfa_token: object, code: str, ctx: LoginContext) -> Finished:
        """Confirm the TOTP of an enrolment and sign in: the credential and recovery codes."""
        found = await self.pending(mfa_token, pending_mod.ENROLL)
        await self._throttled(found.user_id, ctx)
        try:
            codes = await self.codes.confirm_totp(found.user_id, code)
        except InvalidCode:
            await self._failed(found.user_id, ctx, "totp")
            raise
        await self._audit("totp.enabled", found.user_id, ip=ctx.ip, reason="enrollment")
        assert isinstance(mfa_token, str)
        finished = await self.finish(mfa_token, found, {OTP}, ctx)
        return replace(finished, recovery_codes=codes)

    async def remove_totp(self, identity: Identity, *, actor: Identity | None = None) -> bool:
        """Remove the caller's TOTP (fresh authentication required)."""
        self.check_fresh(identity)
        removed = await self.codes.remove_totp(identity.user_id)
        if removed:
            await self._audit("totp.removed", identity.user_id, session=identity.session_id)
        return removed

    async def new_recovery_codes(self, identity: Identity) -> list[str]:
        """Ten new recovery codes for the caller; the old ones stop working."""
        self._enabled()
        self.check_fresh(identity)
        codes = await self.codes.new_recovery_codes(identity.user_id)
        await self._audit("recovery_codes.regenerated", identity.user_id)
        return codes

    # --- step-up ----------------------------------------------------------------------------

    def check_fresh(self, identity: Identity, max_age: int | None = None) -> None:
        """Raise :class:`ReauthenticationRequired` unless ``identity`` authenticated within
        ``max_age`` seconds (default ``fresh_age``)."""
        limit = self.config.fresh_age if max_age is None else int(max_age)
        if not is_fresh(identity.auth_time, self.auth.clock(), limit):
            raise ReauthenticationRequired(limit)

    async def reauthenticate(
        self,
        identity: Identity,
        ctx: LoginContext,
        *,
        password: str | None = None,
        code: str | None = None,
        recovery_code: str | None = None,
    ) -> tuple[Identity, IssuedCredentials | None]:
        """Prove a factor again and renew the session's ``auth_time`` (same session).

        A password goes through the login throttle, a code through this service's one.
        """
        if password is not None:
            if code is not None or recovery_code is not None:
                raise InvalidCode("Send one factor.")
            methods = await self._password_again(identity, password, ctx)
        else:
            methods = await self.check_code(
                identity.user_id, ctx, code=code, recovery_code=recovery_code
            )
        return await self.renew(identity, methods, ctx)

    async def renew(
        self, identity: Identity, methods: Collection[str], ctx: LoginContext
    ) -> tuple[Identity, IssuedCredentials | None]:
        """Renew the session of ``identity`` after ``methods`` were proven again."""
        renewed, issued = await self.auth.strategy.reauthenticated(identity, methods)
        await self._audit(
            "reauthenticated",
            identity.user_id,
            session=identity.session_id,
            ip=ctx.ip,
            amr=" ".join(sorted(methods)),
        )
        if identity.transport is not None:
            renewed = renewed.with_transport(identity.transport)
        return renewed, issued

    async def _password_again(
        self, identity: Identity, password: str, ctx: LoginContext
    ) -> frozenset[str]:
        auth = self.auth
        user = await auth.users.get(identity.user_id)
        try:
            await auth.throttle.check(user.username, ctx.ip)
            checked = await auth.users.verify_login(user.username, password)
        except InvalidLogin:
            await auth.throttle.failure(user.username, ctx.ip)
            await self._audit("reauthentication.failure", user.id, ip=ctx.ip, reason="pwd")
            raise
        if checked.id != identity.user_id:
            raise InvalidLogin()
        return frozenset({PWD})

    # --- administration ---------------------------------------------------------------------

    async def reset(self, user_id: str, *, actor: Identity) -> None:
        """Remove every factor of an account and end its sessions (an admin's action, which
        needs the admin's own fresh authentication); audited."""
        self.check_fresh(actor)
        await self.auth.users.get(user_id)  # NotFound for an unknown account
        await self.docs.remove(user_id)
        await self.auth.revoke_user_sessions(user_id, actor=actor)
        await self._audit("mfa.reset", user_id, actor=actor.user_id)
