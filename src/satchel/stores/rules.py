"""The backend-independent rules: session limits, refresh rotation, e-mail keys, imports.

Pure functions over records and rows, no I/O: the backends differ only in how they read and
write atomically, never in what they decide. Memory, SQLite and PostgreSQL run the session
rules here in Python; Redis runs the same rules in its Lua scripts (``redis_lua``), and the
contract tests hold all four to one behaviour.
"""

from __future__ import annotations

import hmac
import unicodedata
from collections.abc import Collection, Iterable, Sequence
from typing import Any, TypeVar

from satchel.errors import ConfigurationError, SessionLimitExceeded
from satchel.stores.base import OnExceed, RotateOutcome, SessionRecord, UserRecord

_R = TypeVar("_R")


def page(items: Sequence[_R], *, limit: int, offset: int) -> list[_R]:
    """The ``limit`` items from ``offset`` on (negative values count as zero)."""
    start = max(0, offset)
    return list(items[start : start + max(0, limit)])


def email_key(email: str) -> str:
    """The unique lookup key of an address: NFKC + casefold, like a username key.

    Computed here rather than by each database (``lower()`` is ASCII-only in SQLite and
    locale-dependent in PostgreSQL) so every backend agrees on which addresses collide.
    """
    return unicodedata.normalize("NFKC", unicodedata.normalize("NFKC", email).casefold())


def opt_email_key(email: str | None) -> str | None:
    """:func:`email_key` of an address, or None for an account without one."""
    return None if email is None else email_key(email)


def first_of_each(users: Sequence[UserRecord]) -> list[int]:
    """The positions of an import's records worth trying, in order.

    A record repeating the id, username key or e-mail key of an earlier record of the same
    import loses to it, as in a sequence of ``INSERT OR IGNORE``; the records tried are then
    distinct among themselves, so a backend checks them only against stored rows.
    """
    ids: set[str] = set()
    names: set[str] = set()
    emails: set[str] = set()
    tried: list[int] = []
    for position, user in enumerate(users):
        mail = opt_email_key(user.email)
        if user.id in ids or user.username_key in names or (mail is not None and mail in emails):
            continue
        ids.add(user.id)
        names.add(user.username_key)
        if mail is not None:
            emails.add(mail)
        tried.append(position)
    return tried


def refused(
    users: Sequence[UserRecord], tried: Iterable[int], inserted_ids: Collection[str]
) -> list[str]:
    """The usernames of ``users`` that were not inserted, in input order.

    ``tried`` are the positions from :func:`first_of_each` (so their ids are distinct) and
    ``inserted_ids`` the ids the backend wrote; every other record was refused.
    """
    done = {position for position in tried if users[position].id in inserted_ids}
    return [user.username for position, user in enumerate(users) if position not in done]


def check_max_per_user(max_per_user: int | None) -> None:
    """Refuse a nonsensical per-user limit before touching the store."""
    if max_per_user is not None and (isinstance(max_per_user, bool) or max_per_user < 1):
        raise ConfigurationError("max_sessions_per_user must be at least 1 (or unset).")


def plan_create(
    sessions: Iterable[tuple[str, float, float]],
    *,
    now: float,
    max_per_user: int | None,
    on_exceed: OnExceed,
) -> tuple[list[str], list[str]]:
    """What ``SessionStore.create`` removes first: ``(expired, evicted)`` session ids.

    ``sessions`` are the user's ``(id, created_at, expires_at)``; expired ones do not count
    toward the limit. Raises :class:`SessionLimitExceeded` in ``DENY`` mode when full.
    """
    live: list[tuple[float, str]] = []
    expired: list[str] = []
    for sid, created_at, expires_at in sessions:
        if expires_at <= now:
            expired.append(sid)
        else:
            live.append((created_at, sid))
    return expired, plan_limit(live, max_per_user=max_per_user, on_exceed=on_exceed)


def plan_limit(
    live: list[tuple[float, str]],
    *,
    max_per_user: int | None,
    on_exceed: OnExceed,
) -> list[str]:
    """Session ids to evict before adding one more to ``live`` ((created_at, id) pairs).

    Raises :class:`SessionLimitExceeded` in ``DENY`` mode when the account is full.
    """
    if max_per_user is None or len(live) < max_per_user:
        return []
    if on_exceed is OnExceed.DENY:
        raise SessionLimitExceeded()
    ordered = sorted(live)
    return [sid for _, sid in ordered[: len(live) - max_per_user + 1]]


def _in_grace(
    current: bytes | None,
    previous: bytes | None,
    rotated_at: float | None,
    *,
    presented_hash: bytes,
    successor_hash: bytes,
    now: float,
    grace: float,
) -> bool:
    """A concurrent request just rotated ``presented_hash`` to the same successor."""
    return (
        previous is not None
        and current is not None
        and rotated_at is not None
        and hmac.compare_digest(previous, presented_hash)
        and hmac.compare_digest(current, successor_hash)
        and now - rotated_at <= grace
    )


def classify_rotation(
    rec: SessionRecord,
    *,
    presented_hash: bytes,
    successor_hash: bytes,
    now: float,
    grace: float,
) -> RotateOutcome:
    """The compare-and-set decision of ``SessionStore.rotate_refresh`` (no mutation)."""
    if rec.refresh_hash is not None and hmac.compare_digest(rec.refresh_hash, presented_hash):
        return RotateOutcome.ROTATED
    if _in_grace(
        rec.refresh_hash,
        rec.refresh_prev_hash,
        rec.refresh_rotated_at,
        presented_hash=presented_hash,
        successor_hash=successor_hash,
        now=now,
        grace=grace,
    ):
        return RotateOutcome.GRACE
    return RotateOutcome.REUSED


def classify_unswapped(
    state: Sequence[Any] | None,
    *,
    presented_hash: bytes,
    successor_hash: bytes,
    now: float,
    grace: float,
) -> RotateOutcome:
    """The outcome when a compare-and-set UPDATE matched no row (SQL backends).

    ``state`` is the session's re-read ``(refresh_hash, refresh_prev_hash,
    refresh_rotated_at, expires_at)`` row, or None when there is no such session.
    """
    if state is None or state[3] <= now:
        return RotateOutcome.UNKNOWN
    if _in_grace(
        state[0],
        state[1],
        state[2],
        presented_hash=presented_hash,
        successor_hash=successor_hash,
        now=now,
        grace=grace,
    ):
        return RotateOutcome.GRACE
    return RotateOutcome.REUSED


def apply_rotation(rec: SessionRecord, *, successor_hash: bytes, now: float) -> None:
    """Install ``successor_hash`` after a ROTATED decision."""
    rec.refresh_prev_hash = rec.refresh_hash
    rec.refresh_hash = successor_hash
    rec.refresh_rotated_at = now
    rec.generation += 1
