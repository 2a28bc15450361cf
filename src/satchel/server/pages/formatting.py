"""How the pages write times and durations (pure functions, also Jinja globals)."""

from __future__ import annotations

import math
from datetime import UTC, datetime


def format_time(ts: float | None) -> str:
    """``2026-01-05 14:03 UTC`` (empty for None)."""
    if ts is None:
        return ""
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%d %H:%M UTC")


def iso_time(ts: float | None) -> str:
    """Machine-readable form for ``<time datetime=...>``."""
    if ts is None:
        return ""
    return datetime.fromtimestamp(ts, UTC).isoformat(timespec="seconds")


def format_span(seconds: float) -> str:
    """A rough duration: ``45 s``, ``29 min``, ``11 h 59 min``, ``6 days``."""
    seconds = max(0, int(seconds))
    if seconds < 60:
        return f"{seconds} s"
    minutes = seconds // 60
    if minutes < 60:
        return f"{minutes} min"
    hours, minutes = divmod(minutes, 60)
    if hours < 48:
        return f"{hours} h {minutes} min" if minutes else f"{hours} h"
    return f"{hours // 24} days"


def relative(ts: float | None, now: float) -> str:
    """``in 29 min`` / ``3 min ago`` / ``just now``."""
    if ts is None:
        return ""
    delta = ts - now
    if abs(delta) < 30:
        return "just now"
    return f"in {format_span(delta)}" if delta > 0 else f"{format_span(-delta)} ago"


def retry_text(seconds: int) -> str:
    """``45 seconds`` / ``3 minutes``: how long a throttled sign-in has to wait."""
    if seconds < 90:
        return f"{seconds} seconds"
    return f"{math.ceil(seconds / 60)} minutes"
