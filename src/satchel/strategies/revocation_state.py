"""What one process knows about revocations: ended sessions and per-user "valid after".

Fed by the revocation bus (:mod:`satchel.revocation`); pure and synchronous, so a request
checks it with two dict lookups. Shared by the hybrid strategy and :mod:`satchel.verify`.
"""

from __future__ import annotations

import math

from satchel.revocation.base import RevocationEvent, RevocationKind

_PURGE_EVERY = 30.0


class RevocationState:
    """Ended sessions and per-user "valid after" instants, as learnt from revocation events.

    ``keep`` is how long a token blocked by an event can stay valid after the event arrives:
    entries are forgotten after that, so memory stays bounded.
    """

    __slots__ = ("_next_purge", "keep", "sessions", "users")

    def __init__(self, keep: float) -> None:
        self.keep = float(keep)
        self.sessions: dict[str, float] = {}  # sid -> remember until
        self.users: dict[str, tuple[float, float]] = {}  # user id -> (valid_after, until)
        self._next_purge = -math.inf

    def __len__(self) -> int:
        return len(self.sessions) + len(self.users)

    def apply(self, event: RevocationEvent, now: float) -> None:
        """Record ``event``; repeated or reordered events only ever make it stricter."""
        until = min(event.until, now + self.keep)
        if event.kind is RevocationKind.SESSION:
            self.sessions[event.subject] = max(until, self.sessions.get(event.subject, until))
        else:
            old_after, old_until = self.users.get(event.subject, (event.valid_after, until))
            self.users[event.subject] = (
                max(old_after, event.valid_after),
                max(old_until, until),
            )
        if now >= self._next_purge:
            self.purge(now)

    def end_session(self, sid: str, now: float) -> None:
        """Block ``sid`` locally (before the event has gone out)."""
        self.apply(RevocationEvent(RevocationKind.SESSION, sid, until=math.inf), now)

    def blocks(self, sid: str | None, user_id: str, auth_time: float) -> bool:
        """True when a token of session ``sid`` created at ``auth_time`` is revoked."""
        if sid is not None and sid in self.sessions:
            return True
        entry = self.users.get(user_id)
        return entry is not None and auth_time < entry[0]

    def purge(self, now: float) -> None:
        """Forget entries no token they block can outlive."""
        self.sessions = {k: u for k, u in self.sessions.items() if u >= now}
        self.users = {k: v for k, v in self.users.items() if v[1] >= now}
        self._next_purge = now + _PURGE_EVERY
