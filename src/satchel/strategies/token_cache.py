"""Keeping the per-process caches of verified tokens at their live tokens."""

from __future__ import annotations

from satchel.identity import Identity


def drop_expired_front(cache: dict[str, tuple[Identity, float]], now: float) -> None:
    """Drop up to two expired entries from the front of an insertion-ordered token cache.

    Tokens go in roughly in expiry order, so doing this on every insert keeps the cache at
    the tokens of one lifetime instead of letting dead ones fill it up to its size cap.
    """
    for _ in range(2):
        oldest = next(iter(cache), None)
        if oldest is None or cache[oldest][1] >= now:
            return
        del cache[oldest]
