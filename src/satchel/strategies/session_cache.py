"""The session strategy's per-process cache of verified tokens, indexed for revocation.

Pure bookkeeping (no I/O, no clock): the strategy decides when the cache may be trusted —
only while a revocation bus that reaches every process is healthy — and calls the ``drop_*``
methods for every revocation it sees, so an ended session or a changed account leaves the
cache at once. Entries are looked up by token, dropped by session id or by user id.
"""

from __future__ import annotations

from satchel.identity import Identity
from satchel.stores.base import SessionRecord
from satchel.strategies.session_policy import REMEMBER_KEY


class CacheEntry:
    """A verified token in the cache. ``fresh_until`` is the one number the hot path
    checks: the earliest of both expiries, the next due touch and the cache TTL."""

    __slots__ = (
        "absolute_expires_at",
        "cache_until",
        "fresh_until",
        "identity",
        "idle_expires_at",
        "last_seen_at",
        "remember",
        "sid",
        "user_id",
    )

    def __init__(
        self, identity: Identity, record: SessionRecord, cache_until: float, touch: float
    ) -> None:
        self.identity = identity
        self.sid = record.id
        self.user_id = record.user_id
        self.idle_expires_at = record.idle_expires_at
        self.absolute_expires_at = record.absolute_expires_at
        self.last_seen_at = record.last_seen_at
        self.remember = record.data.get(REMEMBER_KEY) is True
        self.cache_until = cache_until
        self.fresh_until = 0.0
        self.refresh(touch)

    def refresh(self, touch_interval: float) -> None:
        """Recompute ``fresh_until`` after the entry's expiries or last-seen moved."""
        self.fresh_until = min(
            self.last_seen_at + touch_interval,
            self.idle_expires_at,
            self.absolute_expires_at,
            self.cache_until,
        )


class SessionCache:
    """At most ``size`` verified tokens, each trusted for ``ttl`` seconds at most.

    ``entries`` is the token → entry map the strategy reads on every request; it is only
    ever changed in place, so a reference to it stays valid.
    """

    __slots__ = ("entries", "sids_of", "size", "token_of", "ttl")

    def __init__(self, size: int, ttl: float) -> None:
        self.size = size
        self.ttl = ttl
        self.entries: dict[str, CacheEntry] = {}
        self.token_of: dict[str, str] = {}  # session id -> cached token
        self.sids_of: dict[str, set[str]] = {}  # user id -> cached session ids

    def __len__(self) -> int:
        return len(self.entries)

    def remember(
        self,
        token: str,
        identity: Identity,
        record: SessionRecord,
        now: float,
        touch_interval: float,
    ) -> None:
        """Cache a token that just passed full verification against ``record``."""
        if token in self.entries:
            self.drop_token(token)
        elif len(self.entries) >= self.size:
            self.drop_token(next(iter(self.entries)))  # oldest insertion first
        self.entries[token] = CacheEntry(identity, record, now + self.ttl, touch_interval)
        self.token_of[record.id] = token
        self.sids_of.setdefault(record.user_id, set()).add(record.id)

    def drop_token(self, token: str) -> None:
        """Forget one token (no-op when it is not cached)."""
        entry = self.entries.pop(token, None)
        if entry is None:
            return
        self.token_of.pop(entry.sid, None)
        sids = self.sids_of.get(entry.user_id)
        if sids is not None:
            sids.discard(entry.sid)
            if not sids:
                del self.sids_of[entry.user_id]

    def drop_session(self, sid: str) -> None:
        """Forget the token of session ``sid``."""
        token = self.token_of.get(sid)
        if token is not None:
            self.drop_token(token)

    def drop_user(self, user_id: str) -> None:
        """Forget every token of ``user_id``."""
        for sid in list(self.sids_of.get(user_id, ())):
            self.drop_session(sid)

    def clear(self) -> bool:
        """Forget everything; True when there was something to forget."""
        if not self.entries:
            return False
        self.entries.clear()
        self.token_of.clear()
        self.sids_of.clear()
        return True
