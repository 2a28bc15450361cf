"""Session life-time policy and the pure rules that apply it (no I/O, no clock reads).

A session ends at the earlier of two instants: the idle expiry, pushed forward by activity,
and the absolute expiry, fixed at login. Activity never moves the idle expiry past the
absolute one (S04/S05).
"""

from __future__ import annotations

from dataclasses import dataclass

from satchel.errors import ConfigurationError
from satchel.stores.base import OnExceed, SessionRecord

DAY = 86_400

#: Key in ``SessionRecord.data`` marking a "remember me" session (longer time-outs).
REMEMBER_KEY = "m"


@dataclass(frozen=True, slots=True)
class SessionPolicy:
    """Time-outs (seconds) and the per-user session cap.

    ``touch_interval`` throttles last-seen writes: activity is recorded at most once per
    interval, so the idle expiry may lag real activity by up to that much (it errs early,
    never late).
    """

    idle_timeout: float = 1800
    absolute_timeout: float = 43_200
    remember_idle_timeout: float = 7 * DAY
    remember_absolute_timeout: float = 30 * DAY
    touch_interval: float = 60
    max_sessions_per_user: int | None = None
    on_exceed: OnExceed = OnExceed.EVICT_OLDEST

    def __post_init__(self) -> None:
        for name in (
            "idle_timeout",
            "absolute_timeout",
            "remember_idle_timeout",
            "remember_absolute_timeout",
        ):
            _require_number(name, getattr(self, name), positive=True)
        _require_number("touch_interval", self.touch_interval, positive=False)
        if self.idle_timeout > self.absolute_timeout:
            raise ConfigurationError("idle_timeout must not exceed absolute_timeout.")
        if self.remember_idle_timeout > self.remember_absolute_timeout:
            raise ConfigurationError(
                "remember_idle_timeout must not exceed remember_absolute_timeout."
            )
        if self.remember_absolute_timeout < self.absolute_timeout:
            raise ConfigurationError("remember_absolute_timeout must be >= absolute_timeout.")
        if self.touch_interval >= self.idle_timeout:
            raise ConfigurationError("touch_interval must be shorter than idle_timeout.")
        cap = self.max_sessions_per_user
        if cap is not None and (isinstance(cap, bool) or not isinstance(cap, int) or cap < 1):
            raise ConfigurationError("max_sessions_per_user must be a positive integer or None.")
        if not isinstance(self.on_exceed, OnExceed):
            raise ConfigurationError("on_exceed must be an OnExceed value.")

    def idle_for(self, remember: bool) -> float:
        """The idle time-out for a normal or a "remember me" session."""
        return self.remember_idle_timeout if remember else self.idle_timeout

    def absolute_for(self, remember: bool) -> float:
        """The absolute time-out for a normal or a "remember me" session."""
        return self.remember_absolute_timeout if remember else self.absolute_timeout

    @property
    def longest(self) -> float:
        """The longest any session can live (bounds how long a revocation must be kept)."""
        return max(self.absolute_timeout, self.remember_absolute_timeout)


def _require_number(name: str, value: object, *, positive: bool) -> None:
    if isinstance(value, bool) or not isinstance(value, int | float) or value != value:
        raise ConfigurationError(f"{name} must be a number of seconds.")
    if value < 0 or (positive and value == 0) or value == float("inf"):
        raise ConfigurationError(
            f"{name} must be a finite {'positive' if positive else 'non-negative'} number."
        )


def is_remembered(record: SessionRecord) -> bool:
    """True for a "remember me" session."""
    return record.data.get(REMEMBER_KEY) is True


def initial_expiries(now: float, policy: SessionPolicy, remember: bool) -> tuple[float, float]:
    """``(idle_expires_at, absolute_expires_at)`` for a session created at ``now``."""
    absolute = now + policy.absolute_for(remember)
    return min(now + policy.idle_for(remember), absolute), absolute


def session_valid(record: SessionRecord, now: float) -> bool:
    """True while neither expiry has been reached (an expiry instant is already invalid)."""
    return now < record.idle_expires_at and now < record.absolute_expires_at


def next_idle_expiry(record: SessionRecord, now: float, policy: SessionPolicy) -> float:
    """The idle expiry after activity at ``now``; never beyond the absolute expiry."""
    return min(now + policy.idle_for(is_remembered(record)), record.absolute_expires_at)


def should_touch(record: SessionRecord, now: float, policy: SessionPolicy) -> bool:
    """True when last-seen is due a write (at most once per ``touch_interval``)."""
    return now - record.last_seen_at >= policy.touch_interval
