"""The set of keys a process verifies with, by ``kid``, and the one it signs with."""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import Any

from satchel.errors import ConfigurationError
from satchel.jose.signing_key import SigningKey


class KeySet:
    """The keys a process verifies with, and the one it signs with.

    Each entry carries ``not_after``: a previous key verifies until that instant and is
    ignored afterwards. ``get`` never falls back to another key (J06). ``active_not_after``
    is set for a signing key that is already superseded by a published successor.
    """

    __slots__ = ("_active", "_entries")

    def __init__(
        self,
        active: SigningKey | None = None,
        previous: Iterable[tuple[SigningKey, float | None]] = (),
        *,
        active_not_after: float | None = None,
    ) -> None:
        self._entries: dict[str, tuple[SigningKey, float]] = {}
        self._active = active
        if active is not None:
            if not active.can_sign:
                raise active.verify_only_error()
            until = math.inf if active_not_after is None else float(active_not_after)
            self._entries[active.kid] = (active, until)
        for key, not_after in previous:
            if key.kid in self._entries:
                raise ConfigurationError(f"Duplicate key id {key.kid!r} in key set.")
            self._entries[key.kid] = (key, math.inf if not_after is None else float(not_after))

    @classmethod
    def verify_only(cls, keys: Iterable[SigningKey]) -> KeySet:
        """A set that verifies with ``keys`` and cannot sign."""
        return cls(None, ((k, None) for k in keys))

    @property
    def active(self) -> SigningKey:
        """The signing key."""
        if self._active is None:
            raise ConfigurationError("This key set has no signing key.")
        return self._active

    def get(self, kid: str, now: float) -> SigningKey | None:
        """The key named ``kid`` if it may verify at ``now``; None otherwise."""
        entry = self._entries.get(kid)
        if entry is None or now > entry[1]:
            return None
        return entry[0]

    def not_after(self, kid: str) -> float:
        """Until when ``kid`` verifies (``inf`` for current keys, ``-inf`` when unknown)."""
        entry = self._entries.get(kid)
        return -math.inf if entry is None else entry[1]

    def kids(self) -> list[str]:
        """Every key id in the set."""
        return list(self._entries)

    def jwks(self, now: float | None = None) -> dict[str, list[dict[str, Any]]]:
        """The public JWKS (RFC 7517 §5). Secret keys never appear; expired ones neither."""
        keys = []
        for key, not_after in self._entries.values():
            if now is not None and now > not_after:
                continue
            jwk = key.public_jwk()
            if jwk is not None:
                keys.append(jwk)
        return {"keys": keys}

    def __len__(self) -> int:
        return len(self._entries)

    def __repr__(self) -> str:
        active = self._active.kid if self._active else None
        return f"KeySet(active={active!r}, kids={list(self._entries)!r})"
