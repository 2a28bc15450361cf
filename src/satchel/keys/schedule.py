"""The key rollout schedule: which stored key signs, which verify, and until when.

Pure rules over :class:`StoredKey` records and an instant; no I/O. A key is published when it
is stored and may sign from ``created_at + publish_delay`` (publish-before-sign, F14), by
which time every node has re-read the store and accepts it.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from satchel.stores.base import KeyState, StoredKey

#: Default seconds between publishing a new key and signing with it: twice the strategies'
#: default ``key_reload_interval`` (60 s), so every node has re-read the keys in between.
DEFAULT_PUBLISH_DELAY = 120.0


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
