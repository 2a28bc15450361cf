"""Store records and the small async interfaces every backend implements.

The interfaces are the only place satchel does I/O. Policy (what is valid, when it expires)
lives in the strategies as pure functions over these records, so a synchronous adapter can
reuse it later. Records are plain dataclasses serialised as JSON — never pickle.
"""

from __future__ import annotations

import enum
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable


class OnExceed(enum.StrEnum):
    """What to do when a user already has ``max_sessions_per_user`` sessions."""

    EVICT_OLDEST = "evict_oldest"
    DENY = "deny"


@dataclass(slots=True, repr=False)
class SessionRecord:
    """A server-side session.

    ``secret_hash`` is SHA-256 of the secret half of the token; the token itself is never
    stored. ``refresh_*`` fields are used by the hybrid strategy's rotating refresh tokens.
    """

    id: str
    user_id: str
    secret_hash: bytes
    created_at: float
    last_seen_at: float
    idle_expires_at: float
    absolute_expires_at: float
    ip: str | None = None
    user_agent: str | None = None
    data: dict[str, Any] = field(default_factory=dict)
    refresh_hash: bytes | None = None
    refresh_prev_hash: bytes | None = None
    refresh_rotated_at: float | None = None
    generation: int = 0

    def expires_at(self) -> float:
        """The nearer of the idle and the absolute expiry."""
        return min(self.idle_expires_at, self.absolute_expires_at)

    def __repr__(self) -> str:
        return f"SessionRecord(id={self.id!r}, user_id={self.user_id!r})"


@dataclass(slots=True, repr=False)
class UserRecord:
    """An account. ``username_key`` is the normalised (NFKC + casefold) unique key."""

    id: str
    username: str
    username_key: str
    password_hash: str
    roles: list[str] = field(default_factory=list)
    disabled: bool = False
    created_at: float = 0.0
    updated_at: float = 0.0
    # Credentials issued before this instant are invalid (password change, disable, revoke-all).
    valid_after: float = 0.0
    #: The address, if the account has one (unique when present).
    email: str | None = None
    #: Extra claims an application adds to every identity and token of this user (for
    #: example ``{"tenant_id": 7}``): JSON values only, never secrets.
    claims: dict[str, Any] = field(default_factory=dict)

    def __repr__(self) -> str:
        return f"UserRecord(id={self.id!r}, username={self.username!r}, roles={self.roles!r})"


class KeyState(enum.StrEnum):
    """Life cycle of a signing key."""

    ACTIVE = "active"  # signs new tokens and verifies
    PREVIOUS = "previous"  # verifies only, until ``not_after``
    RETIRED = "retired"  # kept for the record, never used


@dataclass(slots=True, repr=False)
class StoredKey:
    """A signing or MAC key as persisted. ``material`` is private: PKCS#8 PEM or base64url."""

    kid: str
    alg: str
    material: str
    state: KeyState
    created_at: float
    not_after: float | None = None

    def __repr__(self) -> str:
        return f"StoredKey(kid={self.kid!r}, alg={self.alg!r}, state={self.state.value!r})"


class RotateOutcome(enum.StrEnum):
    """Result of a refresh-token compare-and-set."""

    ROTATED = "rotated"  # presented token was current; successor installed
    GRACE = "grace"  # presented token was just rotated by a concurrent request; same successor
    REUSED = "reused"  # presented token is stale: theft signal, the caller revokes the family
    UNKNOWN = "unknown"  # no such session


@dataclass(slots=True)
class CreateResult:
    """What ``SessionStore.create`` did: the sessions it evicted to make room."""

    evicted: list[str] = field(default_factory=list)


@runtime_checkable
class SessionStore(Protocol):
    """Sessions, with a per-user index so per-user operations cost O(that user's sessions)."""

    async def create(
        self,
        record: SessionRecord,
        *,
        max_per_user: int | None = None,
        on_exceed: OnExceed = OnExceed.EVICT_OLDEST,
        now: float,
    ) -> CreateResult:
        """Persist a new session atomically with the per-user limit.

        Expired sessions of the user do not count toward the limit. In ``DENY`` mode a full
        account raises :class:`satchel.errors.SessionLimitExceeded` and nothing is written.
        """
        ...

    async def get(self, session_id: str) -> SessionRecord | None:
        """The session, or None. Corrupt records read as None (and are logged)."""
        ...

    async def touch(self, session_id: str, *, last_seen_at: float, idle_expires_at: float) -> bool:
        """Record activity; never recreates a deleted session. False when it is gone."""
        ...

    async def delete(self, session_id: str) -> SessionRecord | None:
        """Remove a session; idempotent. Returns the removed record, if there was one."""
        ...

    async def delete_user(self, user_id: str, *, keep: str | None = None) -> list[str]:
        """Remove every session of a user except ``keep``; returns the removed ids."""
        ...

    async def list_user(self, user_id: str) -> list[SessionRecord]:
        """The user's sessions, oldest first (expired ones may be included; callers filter)."""
        ...

    async def list_all(self, *, limit: int = 100, offset: int = 0) -> list[SessionRecord]:
        """Sessions of every user, newest first, for administration."""
        ...

    async def purge_expired(self, now: float) -> int:
        """Delete sessions whose idle or absolute expiry has passed; returns how many."""
        ...

    async def rotate_refresh(
        self,
        session_id: str,
        *,
        presented_hash: bytes,
        successor_hash: bytes,
        now: float,
        grace: float,
    ) -> RotateOutcome:
        """Atomic compare-and-set of the refresh token hash (see :class:`RotateOutcome`).

        ROTATED when ``refresh_hash == presented_hash``: sets prev=presented,
        refresh_hash=successor, rotated_at=now, generation+=1. GRACE when
        ``refresh_prev_hash == presented_hash`` and ``refresh_hash == successor_hash`` and
        ``now - refresh_rotated_at <= grace``. REUSED otherwise; UNKNOWN if no session.
        """
        ...

    async def close(self) -> None:
        """Release connections."""
        ...


@runtime_checkable
class SessionDataStore(Protocol):
    """A session store that can rewrite a session's ``data`` in place (every bundled backend).

    A step-up (``POST /auth/reauthenticate``) records the renewed authentication there.
    """

    async def update_data(self, session_id: str, data: dict[str, Any]) -> bool:
        """Replace the ``data`` of a live session; never recreates a deleted one. False when
        there is no such session."""
        ...


@runtime_checkable
class UserStore(Protocol):
    """Accounts."""

    async def create_user(self, user: UserRecord) -> None:
        """Insert; :class:`satchel.errors.UserExists` if the username, id or email is taken."""
        ...

    async def get_user(self, user_id: str) -> UserRecord | None:
        """By id."""
        ...

    async def get_user_by_name(self, username_key: str) -> UserRecord | None:
        """By normalised username."""
        ...

    async def update_user(self, user: UserRecord) -> None:
        """Replace the stored record with ``user`` (matched by id)."""
        ...

    async def list_users(self, *, limit: int = 100, offset: int = 0) -> list[UserRecord]:
        """Users ordered by username."""
        ...

    async def close(self) -> None:
        """Release connections."""
        ...


@runtime_checkable
class EmailUserStore(Protocol):
    """A user store that can find an account by its address (every bundled backend)."""

    async def get_user_by_email(self, email: str) -> UserRecord | None:
        """The account whose ``email`` matches ``email`` case-insensitively, or None.

        Addresses compare by their NFKC + casefold key, the same key that makes them unique.
        """
        ...


@runtime_checkable
class BulkUserStore(Protocol):
    """A user store that can insert many accounts at once (``satchel users import``)."""

    async def create_users(self, users: Sequence[UserRecord]) -> list[str]:
        """Insert ``users`` in one transaction (or a few large batches).

        Returns the usernames that were *not* inserted because their ``username_key``, their
        ``id`` or their ``email`` is already taken (by a stored account or by an earlier
        record of ``users``), in input order; every other record is inserted.
        """
        ...


@runtime_checkable
class KeyStore(Protocol):
    """Signing keys (private material: the backend must protect it)."""

    async def list_keys(self) -> list[StoredKey]:
        """Every stored key, oldest first."""
        ...

    async def save_key(self, key: StoredKey) -> None:
        """Insert or replace by ``kid``."""
        ...

    async def get_secret(self, name: str) -> bytes | None:
        """A named server secret (e.g. the refresh-token pepper, the CSRF key)."""
        ...

    async def set_secret_if_absent(self, name: str, value: bytes) -> bytes:
        """Store ``value`` unless one exists; return whichever is stored (first writer wins)."""
        ...

    async def close(self) -> None:
        """Release connections."""
        ...


@dataclass(slots=True)
class Stores:
    """The three stores an :class:`satchel.Auth` needs; one backend may serve all three."""

    sessions: SessionStore
    users: UserStore
    keys: KeyStore

    async def close(self) -> None:
        """Close each distinct backend once."""
        seen: set[int] = set()
        for store in (self.sessions, self.users, self.keys):
            if id(store) not in seen:
                seen.add(id(store))
                await store.close()
