"""In-process store for tests, examples and single-process development servers.

Everything lives in dictionaries of this process, so it is lost on restart and not shared
between workers. Sessions are kept as encoded JSON (the same codec the other backends use),
so records never alias the caller's objects and corrupt-record handling can be exercised.
No method awaits between reading and writing, which makes each operation atomic on the
event loop without locks.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from satchel.errors import NotFound, UserExists
from satchel.stores import codec, rules
from satchel.stores.base import (
    CreateResult,
    OnExceed,
    RotateOutcome,
    SessionRecord,
    StoredKey,
    UserRecord,
)

_BACKEND = "memory"


@dataclass(slots=True)
class _Entry:
    user_id: str
    created_at: float
    expires_at: float
    blob: bytes


class MemoryStore:
    """Sessions, users and keys in this process's memory; implements all three protocols."""

    def __init__(self) -> None:
        self._sessions: dict[str, _Entry] = {}
        # user id -> that user's session ids (a dict used as an ordered set)
        self._by_user: dict[str, dict[str, None]] = {}
        self._users: dict[str, str] = {}
        self._user_names: dict[str, str] = {}  # username_key -> user id
        self._name_of: dict[str, str] = {}  # user id -> username_key
        self._emails: dict[str, str] = {}  # email key -> user id
        self._email_of: dict[str, str] = {}  # user id -> email key
        self._keys: dict[str, str] = {}
        self._secrets: dict[str, bytes] = {}

    def __repr__(self) -> str:
        return f"MemoryStore(sessions={len(self._sessions)}, users={len(self._users)})"

    # --- internals ------------------------------------------------------------------------

    def _decode(self, session_id: str, entry: _Entry) -> SessionRecord | None:
        return codec.decode_or_none(
            "session", _BACKEND, codec.decode_session, session_id, entry.blob
        )

    def _put(self, rec: SessionRecord) -> None:
        self._sessions[rec.id] = _Entry(
            rec.user_id, rec.created_at, rec.expires_at(), codec.encode_session(rec)
        )

    def _remove(self, session_id: str) -> _Entry | None:
        entry = self._sessions.pop(session_id, None)
        if entry is not None:
            index = self._by_user.get(entry.user_id)
            if index is not None:
                index.pop(session_id, None)
                if not index:
                    del self._by_user[entry.user_id]
        return entry

    # --- SessionStore ---------------------------------------------------------------------

    async def create(
        self,
        record: SessionRecord,
        *,
        max_per_user: int | None = None,
        on_exceed: OnExceed = OnExceed.EVICT_OLDEST,
        now: float,
    ) -> CreateResult:
        """Persist a new session atomically with the per-user limit."""
        rules.check_max_per_user(max_per_user)
        if record.id in self._sessions:
            raise ValueError("session id already exists")
        entries = ((sid, self._sessions[sid]) for sid in self._by_user.get(record.user_id, {}))
        expired, evict = rules.plan_create(
            ((sid, e.created_at, e.expires_at) for sid, e in entries),
            now=now,
            max_per_user=max_per_user,
            on_exceed=on_exceed,
        )
        for sid in (*expired, *evict):
            self._remove(sid)
        self._put(record)
        self._by_user.setdefault(record.user_id, {})[record.id] = None
        return CreateResult(evicted=evict)

    async def get(self, session_id: str) -> SessionRecord | None:
        """The session, or None (also for a corrupt record)."""
        entry = self._sessions.get(session_id)
        return None if entry is None else self._decode(session_id, entry)

    async def touch(self, session_id: str, *, last_seen_at: float, idle_expires_at: float) -> bool:
        """Record activity; False when the session is gone."""
        entry = self._sessions.get(session_id)
        if entry is None:
            return False
        rec = self._decode(session_id, entry)
        if rec is None:
            return False
        rec.last_seen_at = last_seen_at
        rec.idle_expires_at = idle_expires_at
        self._put(rec)
        return True

    async def update_data(self, session_id: str, data: dict[str, Any]) -> bool:
        """Replace the session's ``data``; False when the session is gone."""
        entry = self._sessions.get(session_id)
        rec = None if entry is None else self._decode(session_id, entry)
        if rec is None:
            return False
        rec.data = dict(data)
        self._put(rec)
        return True

    async def delete(self, session_id: str) -> SessionRecord | None:
        """Remove a session; idempotent."""
        entry = self._remove(session_id)
        return None if entry is None else self._decode(session_id, entry)

    async def delete_user(self, user_id: str, *, keep: str | None = None) -> list[str]:
        """Remove every session of the user except ``keep``."""
        removed = [sid for sid in self._by_user.get(user_id, {}) if sid != keep]
        for sid in removed:
            self._remove(sid)
        return removed

    async def list_user(self, user_id: str) -> list[SessionRecord]:
        """The user's sessions, oldest first."""
        ids = sorted(
            self._by_user.get(user_id, {}), key=lambda sid: (self._sessions[sid].created_at, sid)
        )
        return [r for sid in ids if (r := self._decode(sid, self._sessions[sid])) is not None]

    async def list_all(self, *, limit: int = 100, offset: int = 0) -> list[SessionRecord]:
        """Every user's sessions, newest first."""
        order = sorted(self._sessions, key=lambda sid: (self._sessions[sid].created_at, sid))
        ids = rules.page(order[::-1], limit=limit, offset=offset)
        return [r for sid in ids if (r := self._decode(sid, self._sessions[sid])) is not None]

    async def purge_expired(self, now: float) -> int:
        """Delete sessions past their idle or absolute expiry."""
        expired = [sid for sid, e in self._sessions.items() if e.expires_at <= now]
        for sid in expired:
            self._remove(sid)
        return len(expired)

    async def rotate_refresh(
        self,
        session_id: str,
        *,
        presented_hash: bytes,
        successor_hash: bytes,
        now: float,
        grace: float,
    ) -> RotateOutcome:
        """Compare-and-set of the refresh token hash; an expired session is UNKNOWN."""
        entry = self._sessions.get(session_id)
        if entry is None or entry.expires_at <= now:
            return RotateOutcome.UNKNOWN
        rec = self._decode(session_id, entry)
        if rec is None:
            return RotateOutcome.UNKNOWN
        outcome = rules.classify_rotation(
            rec, presented_hash=presented_hash, successor_hash=successor_hash, now=now, grace=grace
        )
        if outcome is RotateOutcome.ROTATED:
            rules.apply_rotation(rec, successor_hash=successor_hash, now=now)
            self._put(rec)
        return outcome

    # --- UserStore ------------------------------------------------------------------------

    def _taken(self, user: UserRecord, mail: str | None) -> bool:
        return (
            user.username_key in self._user_names
            or user.id in self._users
            or (mail is not None and mail in self._emails)
        )

    def _insert(self, user: UserRecord, mail: str | None, blob: str) -> None:
        self._users[user.id] = blob
        self._user_names[user.username_key] = user.id
        self._name_of[user.id] = user.username_key
        if mail is not None:
            self._emails[mail] = user.id
            self._email_of[user.id] = mail

    async def create_user(self, user: UserRecord) -> None:
        """Insert; UserExists on a duplicate username_key, id or email."""
        mail = rules.opt_email_key(user.email)
        if self._taken(user, mail):
            raise UserExists()
        self._insert(user, mail, codec.encode_user(user))

    async def create_users(self, users: Sequence[UserRecord]) -> list[str]:
        """Insert many; returns the usernames refused (taken username, id or email)."""
        tried = rules.first_of_each(users)
        # Encode everything first: a record that cannot be stored fails the call before
        # anything is written, so an import is all or nothing like a SQL transaction.
        blobs = [codec.encode_user(users[p]) for p in tried]
        inserted: set[str] = set()
        for position, blob in zip(tried, blobs, strict=True):
            user = users[position]
            mail = rules.opt_email_key(user.email)
            if not self._taken(user, mail):
                self._insert(user, mail, blob)
                inserted.add(user.id)
        return rules.refused(users, tried, inserted)

    def _user(self, raw: str | None) -> UserRecord | None:
        return (
            None if raw is None else codec.decode_or_none("user", _BACKEND, codec.decode_user, raw)
        )

    async def get_user(self, user_id: str) -> UserRecord | None:
        """By id."""
        return self._user(self._users.get(user_id))

    async def get_user_by_name(self, username_key: str) -> UserRecord | None:
        """By normalised username."""
        user_id = self._user_names.get(username_key)
        return None if user_id is None else self._user(self._users.get(user_id))

    async def get_user_by_email(self, email: str) -> UserRecord | None:
        """By address, compared by its NFKC + casefold key."""
        user_id = self._emails.get(rules.email_key(email))
        return None if user_id is None else self._user(self._users.get(user_id))

    async def update_user(self, user: UserRecord) -> None:
        """Replace by id; NotFound if absent, UserExists if the new username or email is taken."""
        if user.id not in self._users:
            raise NotFound("No such user.")
        mail = rules.opt_email_key(user.email)
        owner = self._user_names.get(user.username_key)
        mail_owner = None if mail is None else self._emails.get(mail)
        if (owner is not None and owner != user.id) or (
            mail_owner is not None and mail_owner != user.id
        ):
            raise UserExists()
        blob = codec.encode_user(user)
        old_key = self._name_of.get(user.id)
        if old_key is not None and old_key != user.username_key:
            del self._user_names[old_key]
        old_mail = self._email_of.pop(user.id, None)
        if old_mail is not None:
            del self._emails[old_mail]
        self._insert(user, mail, blob)

    async def list_users(self, *, limit: int = 100, offset: int = 0) -> list[UserRecord]:
        """Users ordered by username key."""
        names = rules.page(sorted(self._user_names), limit=limit, offset=offset)
        users = (self._user(self._users.get(self._user_names[n])) for n in names)
        return [u for u in users if u is not None]

    # --- KeyStore -------------------------------------------------------------------------

    async def list_keys(self) -> list[StoredKey]:
        """Every key, oldest first."""
        keys = codec.decode_all("key", _BACKEND, codec.decode_key, self._keys.values())
        return sorted(keys, key=lambda k: (k.created_at, k.kid))

    async def save_key(self, key: StoredKey) -> None:
        """Insert or replace by kid."""
        self._keys[key.kid] = codec.encode_key(key)

    async def get_secret(self, name: str) -> bytes | None:
        """A named server secret."""
        return self._secrets.get(name)

    async def set_secret_if_absent(self, name: str, value: bytes) -> bytes:
        """First writer wins."""
        return self._secrets.setdefault(name, bytes(value))

    async def close(self) -> None:
        """Nothing to release."""
