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

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal, Protocol, runtime_checkable
from urllib.parse import urlencode

from satchel.accounts.jobs import Job, JobQueue
from satchel.accounts.throttle import LoginThrottle, LoginThrottled, ThrottlePolicy
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
from satchel.errors import SatchelError
from satchel.stores.base import UserRecord
from satchel.stores.onetime import OneTimeRecord, OneTimeTokenStore
from satchel.strategies.base import LoginContext

logger = logging.getLogger("satchel.accounts")

SignupMode = Literal["closed", "invite", "open"]


class SignupClosed(SatchelError):
    """Sign-up is closed here (or needs an invitation)."""

    code = "signup_closed"
    status = 403


class AddressTaken(SatchelError):
    """The address already belongs to another account."""

    code = "email_taken"
    status = 409


class Outbox(Protocol):
    """Where the flows hand mails over; ``send`` queues and never raises."""

    def send(self, kind: str, to: str, context: Mapping[str, Any]) -> bool:
        """Queue mail ``kind`` to ``to``; False when it could not be queued."""
        ...


@runtime_checkable
class _Running(Protocol):
    def start(self) -> None: ...

    async def close(self) -> None: ...


@dataclass(frozen=True, slots=True)
class AccountPolicy:
    """What the flows allow and for how long; every lifetime is in seconds."""

    public_url: str
    site_name: str = "satchel"
    signup: SignupMode = "closed"
    setup_ttl: float = 3600
    invite_ttl: float = 7 * 86_400
    verify_ttl: float = 86_400
    reset_ttl: float = 1800
    signin_ttl: float = 600
    email_change_ttl: float = 86_400
    reset_ends_sessions: bool = True
    email_change_ends_sessions: bool = True
    admin_role: str = "admin"


class AccountThrottle:
    """Limits of the mail flows, on one ``limits`` storage.

    - requests per client address (over: 429) and per e-mail address (over: the request is
      answered as usual but nothing is sent, so the limit tells nothing about the address);
    - failed token and code attempts per client address (over: 429), and failed codes per
      e-mail address (over: 429, and the outstanding codes of that address are deleted).
    """

    def __init__(
        self,
        base: LoginThrottle,
        *,
        request_ip: tuple[int, float] = (30, 3600.0),
        request_address: tuple[int, float] = (5, 3600.0),
        failure_ip: tuple[int, float] = (50, 3600.0),
        code_address: tuple[int, float] = (5, 600.0),
    ) -> None:
        def make(name: str, ip: tuple[int, float] | None, acct: tuple[int, float] | None) -> Any:
            policy = ThrottlePolicy(
                account_limit=acct[0] if acct else 0,
                account_window=acct[1] if acct else 60.0,
                ip_limit=ip[0] if ip else 0,
                ip_window=ip[1] if ip else 60.0,
            )
            return LoginThrottle(
                base.storage, policy, clock=base.clock, prefix=f"{base.prefix}:{name}"
            )

        self.base = base
        self.request_ip: LoginThrottle = make("acct-req", request_ip, None)
        self.request_address: LoginThrottle = make("acct-req", None, request_address)
        self.failure_ip: LoginThrottle = make("acct-fail", failure_ip, None)
        self.code_address: LoginThrottle = make("acct-code", None, code_address)

    async def request(self, subject: str, ip: str | None) -> bool:
        """Count a mail request; 429 past the client limit, False past the address limit."""
        await self.request_ip.check("-", ip)
        await self.request_ip.failure("-", ip)
        try:
            await self.request_address.check(subject, None)
        except LoginThrottled:
            logger.info("mail request over the per-address limit; nothing sent")
            return False
        await self.request_address.failure(subject, None)
        return True

    async def close(self) -> None:
        """Close the shared storage."""
        await self.base.close()


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
        from satchel.accounts.email_change import EmailChange
        from satchel.accounts.recovery import Recovery
        from satchel.accounts.signin_links import SignInLinks
        from satchel.accounts.signup import SignUp

        self.auth = auth
        self.tokens = tokens
        self.hasher = hasher
        self.outbox = outbox
        self.policy = policy
        self.throttle = throttle or AccountThrottle(LoginThrottle(clock=auth.clock))
        self.jobs = jobs or JobQueue("accounts", max_size=1000, workers=2)
        self.signup = SignUp(self)
        self.recovery = Recovery(self)
        self.links = SignInLinks(self)
        self.email = EmailChange(self)

    def __repr__(self) -> str:
        return f"AccountService(signup={self.policy.signup!r})"

    # --- life cycle -----------------------------------------------------------------------

    def start(self) -> None:
        """Start the background workers (and the outbox's)."""
        self.jobs.start()
        if isinstance(self.outbox, _Running):
            self.outbox.start()

    async def join(self) -> None:
        """Wait for queued background jobs (tests; mails are still being sent after)."""
        await self.jobs.join()

    async def close(self) -> None:
        """Finish queued jobs and mails (briefly), then release the throttle storage."""
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
        """A brand-new credential for ``user`` (after a link or code proved the address)."""
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


def expires_text(seconds: float) -> str:
    """``30 minutes``, ``1 hour``, ``24 hours``, ``7 days`` (for the mails)."""
    minutes = round(seconds / 60)
    if minutes < 60:
        return f"{minutes} minute{'s' if minutes != 1 else ''}"
    hours = round(minutes / 60)
    if hours <= 48:
        return f"{hours} hour{'s' if hours != 1 else ''}"
    days = round(hours / 24)
    return f"{days} days"
