"""The key rollout schedule: which stored key signs, which verify, and until when.

Pure rules over :class:`StoredKey` records and an instant; no I/O. A key is published when it
is stored and may sign from ``created_at + publish_delay`` (publish-before-sign, F14), by
which time every node has re-read the store and accepts it. The timing invariants:

- every node re-reads the keys at least every ``reload_interval``, and
  ``publish_delay >= 2 * reload_interval`` leaves a whole interval of margin;
- a JWKS may be cached for :func:`jwks_max_age` seconds, so a verifier that honours the
  header has fetched the new key before it signs.
"""

from __future__ import annotations

import enum
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from satchel.stores.base import KeyState, StoredKey

#: Default seconds between publishing a new key and signing with it: twice the default
#: reload interval, so every node has re-read the keys in between, with a margin.
DEFAULT_PUBLISH_DELAY = 120.0
#: Default (and longest) seconds a node keeps its view of the stored keys.
DEFAULT_RELOAD_INTERVAL = 60.0
#: Longest JWKS cache lifetime ever advertised, in seconds.
MAX_JWKS_MAX_AGE = 60


def default_reload_interval(publish_delay: float) -> float:
    """The reload interval that keeps ``publish_delay >= 2 * reload_interval``."""
    return min(DEFAULT_RELOAD_INTERVAL, publish_delay / 2)


def jwks_max_age(publish_delay: float) -> int:
    """Seconds a JWKS may be cached: at most half the publish delay (and at most 60).

    A verifier honouring it re-fetches within that time, so one that fetched just before a
    key was stored still learns the key before it signs.
    """
    return max(0, math.floor(min(MAX_JWKS_MAX_AGE, publish_delay / 2)))


class KeyRole(enum.StrEnum):
    """What a stored key does at a given instant (derived, never stored)."""

    SIGNING = "signing"  # signs new tokens (exactly one key) and verifies
    PENDING = "pending"  # published and verifying; signs from ``signs_from``
    VERIFYING = "verifying"  # verifies only, until ``not_after`` (if set)
    EXPIRED = "expired"  # past ``not_after``: neither signs nor verifies
    RETIRED = "retired"  # never used again


@dataclass(frozen=True, slots=True)
class KeyStatus:
    """The role of one stored key at one instant; carries no key material."""

    kid: str
    alg: str
    state: KeyState
    role: KeyRole
    created_at: float
    not_after: float | None
    signs_from: float | None = None


def rollout_order(record: StoredKey) -> tuple[float, bool, str]:
    """Sort key for records, oldest first."""
    # Age order. A rotation demotes every ACTIVE key, so on equal creation times the
    # ACTIVE one is the newer; the kid only makes the order total.
    return (record.created_at, record.state is KeyState.ACTIVE, record.kid)


def is_usable(record: StoredKey, now: float) -> bool:
    """Whether ``record`` may still sign or verify at ``now`` (not retired, not expired)."""
    return record.state is not KeyState.RETIRED and (
        record.not_after is None or now <= record.not_after
    )


def signing_record(
    records: Iterable[StoredKey], now: float, publish_delay: float
) -> StoredKey | None:
    """The record that signs at ``now`` under the publish-before-sign rule (F14).

    A key is published when it is stored; it may sign from ``created_at + publish_delay``,
    by which time every node has re-read the store and accepts it. The newest usable key
    past that point signs. While no usable key is past it (the very first key, or a
    rotation right after it), the oldest usable key signs: it is the one every node knows.
    """
    usable = [r for r in records if is_usable(r, now)]
    if not usable:
        return None
    published = [r for r in usable if r.created_at + publish_delay <= now]
    if published:
        return max(published, key=rollout_order)
    return min(usable, key=rollout_order)


def next_change(records: Iterable[StoredKey], now: float, publish_delay: float) -> float:
    """The first instant after ``now`` at which :func:`signing_record` may answer differently.

    The signer only changes when a key passes its publish delay or its ``not_after``, so a
    caller may keep its answer until then instead of recomputing it on every request.
    """
    until = math.inf
    for record in records:
        for instant in (record.created_at + publish_delay, record.not_after):
            if instant is not None and now < instant < until:
                until = instant
    return until


def key_statuses(records: Sequence[StoredKey], now: float, publish_delay: float) -> list[KeyStatus]:
    """The role of every record at ``now`` (same order as ``records``)."""
    signer = signing_record(records, now, publish_delay)
    statuses = []
    for record in records:
        signs_from = None
        if record.state is KeyState.RETIRED:
            role = KeyRole.RETIRED
        elif not is_usable(record, now):
            role = KeyRole.EXPIRED
        elif record is signer:
            role = KeyRole.SIGNING
        elif signer is not None and rollout_order(record) > rollout_order(signer):
            # Newer than the signer means not yet past its publish delay.
            role, signs_from = KeyRole.PENDING, record.created_at + publish_delay
        else:
            role = KeyRole.VERIFYING
        statuses.append(
            KeyStatus(
                kid=record.kid,
                alg=record.alg,
                state=record.state,
                role=role,
                created_at=record.created_at,
                not_after=record.not_after,
                signs_from=signs_from,
            )
        )
    return statuses


def describe(status: KeyStatus, now: float) -> str:
    """What the key does, for people: ``signing``, ``next, signs from <time>``,
    ``verifies until <time>`` or ``retired`` (also for a key past its ``not_after``)."""
    if status.role is KeyRole.SIGNING:
        return "signing"
    if status.role is KeyRole.PENDING and status.signs_from is not None:
        return f"next, signs from {_when(status.signs_from, now)}"
    if status.role in (KeyRole.VERIFYING, KeyRole.PENDING):
        if status.not_after is None:
            return "verifies until the next rotation"
        return f"verifies until {_when(status.not_after, now)}"
    return "retired"


def _when(at: float, now: float) -> str:
    try:
        stamp = datetime.fromtimestamp(at, UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
    except (OverflowError, OSError, ValueError):
        stamp = "a date out of range"
    return f"{stamp} ({_relative(at - now)})"


def _relative(delta: float) -> str:
    seconds = abs(delta)
    if seconds < 1:
        return "now"
    for unit, size in (("d", 86_400), ("h", 3600), ("min", 60)):
        if seconds >= size:
            amount = f"{seconds / size:.0f} {unit}"
            break
    else:
        amount = f"{seconds:.0f} s"
    return f"in {amount}" if delta > 0 else f"{amount} ago"
