"""Rotating refresh tokens over session records, with reuse detection (RFC 9700 §4.14.2).

A login creates one session record: the token *family*. It holds SHA-256 of the current
refresh token and of the one that token replaced. A refresh presents a token; its successor
is derived from it (:mod:`satchel.strategies.refresh_tokens`), so requests racing with the
same token compute the same successor, and ``SessionStore.rotate_refresh`` installs it with
a compare-and-set: the first wins (ROTATED), the others within ``grace`` seconds receive the
same successor (GRACE) — never two independent ones. Presenting a retired token after that
(REUSED) ends the whole family, emits a ``theft`` audit event and hands the ended session to
the strategy, which publishes the revocation. A family never outlives its record's absolute
expiry.

Shared by the hybrid strategy and the refreshing JWT strategy. The store is touched only at
login and refresh, never per request.
"""

from __future__ import annotations

import secrets
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol, TypeVar

from satchel.audit import AuditEvent, AuditLog
from satchel.clock import Clock
from satchel.errors import ConfigurationError, ExpiredCredential, InvalidCredential
from satchel.stores.base import KeyStore, RotateOutcome, SessionRecord, SessionStore, UserRecord
from satchel.strategies.application_claims import application_claims
from satchel.strategies.base import LoginContext, UserLookup
from satchel.strategies.key_binding import RefreshKeyMismatch, check_refresh_key, record_jkt
from satchel.strategies.refresh_tokens import PEPPER_NAME, UNKNOWN_REFRESH, RefreshTokens
from satchel.strategies.session_policy import session_valid

_T = TypeVar("_T")

REUSE_DETECTED = "Refresh token reuse detected; the session has been ended."


class GuardedIO(Protocol):
    """Awaits a store call; an infrastructure failure becomes a 503 (the strategy's ``_io``)."""

    def __call__(self, operation: Awaitable[_T], /) -> Awaitable[_T]: ...


#: Called with the session a reused token ended, and its record when there still was one.
OnReuse = Callable[[str, SessionRecord | None], Awaitable[None]]
#: The idle expiry of a family refreshed at ``now`` (never beyond its absolute expiry).
IdleAfter = Callable[[SessionRecord, float], float]


@dataclass(slots=True, repr=False)
class Rotation:
    """A successful refresh: the family (already touched), its user with its checked
    application claims, and the new refresh token."""

    record: SessionRecord
    user: UserRecord
    claims: Mapping[str, Any]
    refresh_token: str
    now: float

    def __repr__(self) -> str:
        return f"Rotation(session={self.record.id!r})"


class RefreshFamilies:
    """Refresh-token families of one strategy; see the module docstring."""

    def __init__(
        self,
        store: SessionStore,
        users: UserLookup,
        secrets_store: KeyStore,
        *,
        grace: float,
        clock: Clock,
        audit: AuditLog,
        io: GuardedIO,
        on_reuse: OnReuse,
        idle_after: IdleAfter,
    ) -> None:
        if isinstance(grace, bool) or not isinstance(grace, int | float) or not 0 <= grace <= 300:
            raise ConfigurationError("refresh_grace must be between 0 and 300 seconds.")
        self.store = store
        self.users = users
        self.secrets_store = secrets_store
        self.grace = float(grace)
        self.clock = clock
        self.audit = audit
        self._io = io
        self._on_reuse = on_reuse
        self._idle_after = idle_after
        self._tokens: RefreshTokens | None = None

    def __repr__(self) -> str:
        return f"RefreshFamilies(store={type(self.store).__name__}, grace={self.grace})"

    async def start(self) -> None:
        """Load the pepper (the first process to start creates it)."""
        pepper = await self._io(
            self.secrets_store.set_secret_if_absent(PEPPER_NAME, secrets.token_bytes(32))
        )
        self._tokens = RefreshTokens(pepper)

    @property
    def tokens(self) -> RefreshTokens:
        """The refresh-token codec (ConfigurationError before :meth:`start`)."""
        if self._tokens is None:
            raise ConfigurationError("The strategy's start() has not been awaited.")
        return self._tokens

    def first(self, record: SessionRecord) -> str:
        """The first refresh token of a new family; its hash goes onto ``record``."""
        tokens = self.tokens
        token = tokens.first(record.id)
        record.refresh_hash = tokens.digest(token)
        return token

    async def rotate(self, refresh_token: str, ctx: LoginContext) -> Rotation:
        """Retire ``refresh_token`` for its successor; reuse of a retired one ends the family.

        Raises :class:`InvalidCredential` for a forged, unknown, ended or reused token and
        :class:`ExpiredCredential` once the family has expired.
        """
        tokens = self.tokens
        sid, gen = tokens.parse(refresh_token)
        successor = tokens.successor(refresh_token, sid, gen)
        now = self.clock()
        # The family and its account are checked before the token is used up, so a refusal
        # here (an expired family, a disabled account, a misconfigured claim) leaves the token
        # as it was: a retry later is not mistaken for reuse.
        record = await self._io(self.store.get(sid))
        if record is None:
            raise InvalidCredential(UNKNOWN_REFRESH)
        if not session_valid(record, now):
            raise ExpiredCredential("The session has expired.")
        user = await self._io(self.users.get_user(record.user_id))
        if user is None or user.disabled or record.created_at < user.valid_after:
            raise InvalidCredential(UNKNOWN_REFRESH)
        claims = application_claims(user)
        try:  # before the token is used up: the key's holder can still refresh with it
            check_refresh_key(record_jkt(record.data), ctx.dpop_jkt)
        except RefreshKeyMismatch:
            reason = "refresh_key_mismatch"
            await self.audit.emit(
                AuditEvent("dpop.failure", user_id=user.id, session=sid, ip=ctx.ip, reason=reason)
            )
            raise
        outcome = await self._io(
            self.store.rotate_refresh(
                sid,
                presented_hash=tokens.digest(refresh_token),
                successor_hash=tokens.digest(successor),
                now=now,
                grace=self.grace,
            )
        )
        if outcome is RotateOutcome.UNKNOWN:
            raise InvalidCredential(UNKNOWN_REFRESH)
        if outcome is RotateOutcome.REUSED:
            await self._reuse_detected(sid, gen, ctx)
            raise InvalidCredential(REUSE_DETECTED)
        # A refresh is activity: it pushes the idle expiry (never past the absolute one).
        # touch() never recreates a session ended since it was read.
        idle = self._idle_after(record, now)
        if not await self._io(self.store.touch(sid, last_seen_at=now, idle_expires_at=idle)):
            raise InvalidCredential(UNKNOWN_REFRESH)
        record.last_seen_at, record.idle_expires_at = now, idle
        return Rotation(record, user, claims, successor, now)

    async def _reuse_detected(self, sid: str, gen: int, ctx: LoginContext) -> None:
        """A retired refresh token came back: someone holds a copy. End the family."""
        record = await self._io(self.store.delete(sid))
        await self.audit.emit(
            AuditEvent(
                "theft",
                user_id=record.user_id if record else None,
                session=sid,
                ip=ctx.ip,
                reason="refresh_token_reuse",
                extra={"generation": gen},
            )
        )
        await self._on_reuse(sid, record)


class FamilyAccessors:
    """What a strategy with refresh-token families exposes of them (hybrid, jwt-refresh)."""

    families: RefreshFamilies

    @property
    def audit(self) -> AuditLog:
        """Where refresh-token theft is reported."""
        return self.families.audit

    @audit.setter
    def audit(self, audit: AuditLog) -> None:
        self.families.audit = audit

    @property
    def refresh_grace(self) -> float:
        """Seconds in which a just-retired refresh token still gets the same successor."""
        return self.families.grace

    @property
    def refresh_tokens(self) -> RefreshTokens:
        """The refresh-token codec (ConfigurationError before ``start()``)."""
        return self.families.tokens
