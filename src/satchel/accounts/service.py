"""The account life cycle over the stores: what every flow shares, and the flows themselves
as members (``signup``, ``recovery``, ``links``, ``email``).

No framework and no mail library here: mail goes through the small :class:`Outbox`
protocol (:class:`satchel.mail.MailOutbox` implements it), work that depends on whether an
address is known runs in a background :class:`~satchel.accounts.jobs.JobQueue`, and every
store call goes through :class:`~satchel.stores.onetime.OneTimeTokenStore` and the
:class:`~satchel.Auth`'s user service. So a request about an address does the same work,
in the same time, whether the address belongs to an account or not: it checks the input
and the throttles, queues a job and answers.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any, Protocol, runtime_checkable
from urllib.parse import urlencode

from satchel.accounts.account_policy import AccountPolicy, Outbox
from satchel.accounts.email_change import EmailChange
from satchel.accounts.jobs import Job, JobQueue
from satchel.accounts.mail_throttle import AccountThrottle
from satchel.accounts.recovery import Recovery
from satchel.accounts.signin_links import SignInLinks
from satchel.accounts.signup import SignUp
from satchel.accounts.throttle import LoginThrottle
from satchel.accounts.tokens import (
    InvalidOneTimeToken,
    TokenHasher,
    TokenKind,
    looks_like_token,
    new_token,
    usable_for,
)
from satchel.audit import AuditEvent
from satchel.auth import Auth, LoginResult
from satchel.stores.base import UserRecord
from satchel.stores.onetime import OneTimeRecord, OneTimeTokenStore
from satchel.strategies.base import LoginContext

logger = logging.getLogger("satchel.accounts")


@runtime_checkable
class _Running(Protocol):
    def start(self) -> None: ...

    async def close(self) -> None: ...


class AccountService:
    """Every account flow of one :class:`Auth`; see the module docstring."""

    def __init__(
        self,
        auth: Auth,
        *,
        tokens: OneTimeTokenStore,
        hasher: TokenHasher,
        outbox: Outbox,
        policy: AccountPolicy,
        throttle: AccountThrottle | None = None,
        jobs: JobQueue | None = None,
    ) -> None:
        self.auth = auth
        self.tokens = tokens
        self.hasher = hasher
        self.outbox = outbox
        self.policy = policy
        self.throttle = throttle or AccountThrottle(LoginThrottle(clock=auth.clock))
        self.jobs = jobs or JobQueue("accounts", max_size=1000, workers=2)
        self._purger: asyncio.Task[None] | None = None
        self.signup = SignUp(self)
        self.recovery = Recovery(self)
        self.links = SignInLinks(self)
        self.email = EmailChange(self)

    def __repr__(self) -> str:
        return f"AccountService(signup={self.policy.signup!r})"

    # --- life cycle -----------------------------------------------------------------------

    def start(self) -> None:
        """Start the background workers (and the outbox's) and the periodic purge."""
        self.jobs.start()
        if isinstance(self.outbox, _Running):
            self.outbox.start()
        if self.policy.purge_interval > 0 and self._purger is None:
            self._purger = asyncio.get_running_loop().create_task(
                self._purge_forever(self.policy.purge_interval), name="satchel-token-purge"
            )

    async def _purge_forever(self, interval: float) -> None:
        # Expired tokens are never returned; deleting them is housekeeping, retried next time.
        while True:
            await asyncio.sleep(interval)
            try:
                removed = await self.tokens.purge_expired(self.now())
            except Exception as exc:  # logged and retried; must not end the server
                logger.warning("one-time token purge failed: %s", type(exc).__name__)
            else:
                if removed:
                    logger.info("purged %d expired one-time tokens", removed)

    async def join(self) -> None:
        """Wait for queued background jobs (tests; mails are still being sent after)."""
        await self.jobs.join()

    async def close(self) -> None:
        """Finish queued jobs and mails (briefly), then release the throttle storage."""
        if self._purger is not None:
            self._purger.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._purger
            self._purger = None
        await self.jobs.close()
        if isinstance(self.outbox, _Running):
            await self.outbox.close()
        await self.throttle.close()

    # --- shared helpers -------------------------------------------------------------------

    def now(self) -> float:
        return self.auth.clock()

    def link(self, path: str, **params: str) -> str:
        """An absolute link on the configured public URL (never the request's Host)."""
        query = f"?{urlencode(params)}" if params else ""
        return f"{self.policy.public_url}{path}{query}"

    def mail(self, kind: str, to: str, **context: Any) -> None:
        """Queue mail ``kind`` with the variables every template gets."""
        values = {"site_name": self.policy.site_name, "public_url": self.policy.public_url}
        self.outbox.send(kind, to, {**values, **context})

    def background(self, job: Job, label: str) -> None:
        """Run ``job`` off the request path (dropped and logged when the queue is full)."""
        self.jobs.submit(job, label)

    async def audit(self, name: str, **fields: Any) -> None:
        await self.auth.audit.emit(AuditEvent(name, **fields))

    async def issue(
        self,
        kind: TokenKind,
        ttl: float,
        *,
        user_id: str | None = None,
        email: str | None = None,
        data: dict[str, Any] | None = None,
    ) -> str:
        """Store a new token of ``kind`` and return it (the only time it exists in clear)."""
        token = new_token()
        now = self.now()
        await self.tokens.put(
            OneTimeRecord(
                kind=kind.value,
                token_hash=self.hasher.token(kind, token),
                created_at=now,
                expires_at=now + ttl,
                user_id=user_id,
                email=email,
                data=data or {},
            )
        )
        return token

    async def guard(self, ip: str | None) -> None:
        """429 when this client has failed too many tokens or codes lately."""
        await self.throttle.failure_ip.check("-", ip)

    async def failed(self, ip: str | None, kind: TokenKind) -> InvalidOneTimeToken:
        """Count a failed attempt; the error to raise (the same for every reason)."""
        await self.throttle.failure_ip.failure("-", ip)
        await self.audit("token.rejected", ip=ip, reason=kind.value)
        return InvalidOneTimeToken()

    async def peek(self, kind: TokenKind, token: object, ip: str | None) -> OneTimeRecord:
        """The live record of ``token`` without using it up, or :class:`InvalidOneTimeToken`."""
        await self.guard(ip)
        if not looks_like_token(token):
            raise await self.failed(ip, kind)
        assert isinstance(token, str)
        record = await self.tokens.peek(kind.value, self.hasher.token(kind, token), self.now())
        if record is None:
            raise await self.failed(ip, kind)
        return record

    async def take(self, kind: TokenKind, token: object, ip: str | None) -> OneTimeRecord:
        """Use ``token`` up (atomically) and return its record, or :class:`InvalidOneTimeToken`."""
        await self.guard(ip)
        if not looks_like_token(token):
            raise await self.failed(ip, kind)
        assert isinstance(token, str)
        record = await self.tokens.consume(kind.value, self.hasher.token(kind, token), self.now())
        if record is None:
            raise await self.failed(ip, kind)
        return record

    async def owner(self, record: OneTimeRecord, ip: str | None) -> UserRecord:
        """The account ``record`` acts on, if the token may still act on it."""
        user = await self.auth.users.store.get_user(record.user_id) if record.user_id else None
        if not usable_for(record, user, self.now()):
            raise await self.failed(ip, TokenKind(record.kind))
        assert user is not None
        return user

    async def forget(self, user_id: str, *kinds: TokenKind) -> None:
        """Delete the user's outstanding tokens of ``kinds``."""
        for kind in kinds:
            await self.tokens.delete_for_user(kind.value, user_id)

    async def sign_in(self, user: UserRecord, ctx: LoginContext, how: str) -> LoginResult:
        """A brand-new credential for ``user`` (after a link or code proved the address).

        A proven address is one factor: an account with a second factor (or that must set
        one up) gets :class:`~satchel.accounts.mfa.errors.MfaRequired` here, as a password
        sign-in does.
        """
        if self.auth.mfa is not None:
            await self.auth.mfa.after_password(user, ctx)
        identity, issued = await self.auth.strategy.issue(user, ctx)
        await self.audit(
            "login.success",
            user_id=user.id,
            username=user.username,
            session=identity.session_id,
            ip=ctx.ip,
            reason=how,
        )
        return LoginResult(identity, issued)

    async def end_sessions(self, user_id: str, *, keep: str | None, reason: str) -> None:
        """End the user's sessions (all, or all but ``keep`` where sessions are kept)."""
        sessions = self.auth.sessions
        if keep is not None and sessions is not None:
            ended = await sessions.revoke_user_sessions(user_id, keep=keep)
            await self.audit("revoke", user_id=user_id, reason=reason, extra={"count": len(ended)})
            return
        # Without sessions to end one by one (jwt), only "every credential" can end.
        await self.auth.revoke_user_sessions(user_id)
