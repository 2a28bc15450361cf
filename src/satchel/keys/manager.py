"""The signing keys kept in a :class:`KeyStore`: load, reload, rotate, publish.

The rules of the rollout (which key signs, when) are pure and live in
:mod:`satchel.keys.schedule`; this module does the store I/O around them.
"""

from __future__ import annotations

import asyncio
import json
import logging
import math
from collections.abc import Iterable, Sequence
from typing import Any

from satchel.clock import Clock, system_clock
from satchel.errors import ConfigurationError
from satchel.jose.jwk import (
    ALGORITHMS,
    DEFAULT_ALG,
    SigningKey,
    check_kid,
    generate_key,
    key_from_stored,
)
from satchel.jose.keyset import KeySet
from satchel.keys.schedule import (
    DEFAULT_PUBLISH_DELAY,
    KeyStatus,
    default_reload_interval,
    is_usable,
    jwks_max_age,
    key_statuses,
    next_change,
    rollout_order,
    signing_record,
)
from satchel.stores.base import KeyState, KeyStore, StoredKey

logger = logging.getLogger("satchel.keys")

#: Secret name used to agree on the very first key when several processes start at once.
# A stored record name: kept as first released, whatever the module is called now.
INITIAL_KEY_RECORD = "satchel.jwt.initial-key"

#: A JWKS request re-reads the store when the loaded keys are older than this, so a new key
#: is listed within a second of being stored, on every process, whether or not it signs or
#: verifies anything; a flood of requests costs at most one store read a second.
JWKS_RELOAD_INTERVAL = 1.0


def _stored_to_json(stored: StoredKey) -> bytes:
    return json.dumps(
        {
            "kid": stored.kid,
            "alg": stored.alg,
            "material": stored.material,
            "created_at": stored.created_at,
        },
        separators=(",", ":"),
    ).encode("utf-8")


def _stored_from_json(raw: bytes) -> StoredKey:
    try:
        data = json.loads(raw)
        return StoredKey(
            kid=check_kid(data["kid"]),
            alg=str(data["alg"]),
            material=str(data["material"]),
            state=KeyState.ACTIVE,
            created_at=float(data["created_at"]),
        )
    except (ValueError, KeyError, TypeError):
        raise ConfigurationError("The stored initial signing key is corrupt.") from None


def _fingerprint(records: Iterable[StoredKey]) -> tuple[tuple[str, str, str, float, Any], ...]:
    return tuple(sorted((r.kid, r.alg, r.state.value, r.created_at, r.not_after) for r in records))


class KeyManager:
    """Loads, creates, rotates and publishes the signing keys kept in a :class:`KeyStore`.

    Keys are generated once and never silently regenerated. The first key is agreed
    through ``set_secret_if_absent`` so processes starting together end up with the same
    key, and signs at once. A rotated-in key is published first and signs only after
    ``publish_delay`` (see :func:`~satchel.keys.schedule.signing_record`); until then the
    old key keeps signing. Every node must re-read the keys at least every
    ``reload_interval``, and ``publish_delay >= 2 * reload_interval``.

    Commands that never sign (user administration) use :meth:`load`, which creates nothing.
    """

    def __init__(
        self,
        store: KeyStore,
        clock: Clock = system_clock,
        *,
        alg: str = DEFAULT_ALG,
        overlap: float = 86_400.0,
        publish_delay: float = DEFAULT_PUBLISH_DELAY,
        reload_interval: float | None = None,
    ) -> None:
        if alg not in ALGORITHMS:
            raise ConfigurationError(
                f"Unsupported signing algorithm; use one of {', '.join(ALGORITHMS)}."
            )
        self.store = store
        self.clock = clock
        self.alg = alg
        self.overlap = _seconds("Key overlap", overlap)
        self.publish_delay = _seconds("Key publish delay", publish_delay)
        self.reload_interval = (
            default_reload_interval(self.publish_delay)
            if reload_interval is None
            else _seconds("Key reload interval", reload_interval)
        )
        if 2 * self.reload_interval > self.publish_delay:
            # F14: a node could still hold its old view when the new key starts signing.
            raise ConfigurationError(
                "The key publish delay must be at least twice the key reload interval."
            )
        # Records that loaded, their key objects, and the set built for the current signer.
        self._records: list[StoredKey] | None = None
        self._keys: dict[str, SigningKey] = {}
        self._keyset: KeySet | None = None
        self._keyset_from = self._keyset_until = -math.inf
        self._fingerprint: tuple[Any, ...] = ()
        self._reported: tuple[Any, ...] | None = None
        self._loaded_at = -math.inf
        # One re-read at a time: concurrent requests that find the view stale share it.
        self._reading = asyncio.Lock()

    @property
    def keyset(self) -> KeySet:
        """The last loaded keys, signing with the key that signs now (no store read)."""
        if self._records is None:
            raise ConfigurationError("Signing keys are not loaded; call load_or_create().")
        now = self.clock()
        if self._keyset is not None and self._keyset_from <= now < self._keyset_until:
            return self._keyset
        signer = signing_record(self._records, now, self.publish_delay)
        if signer is None:
            raise ConfigurationError("No usable signing key is loaded; rotate the keys.")
        if self._keyset is None or self._keyset.active.kid != signer.kid:
            self._keyset = KeySet(
                self._keys[signer.kid],
                ((self._keys[r.kid], r.not_after) for r in self._records if r is not signer),
                active_not_after=signer.not_after,
            )
        # Read on every verified token: keep the answer until the signer can change.
        self._keyset_from = now
        self._keyset_until = next_change(self._records, now, self.publish_delay)
        return self._keyset

    @property
    def jwks_max_age(self) -> int:
        """Seconds a client may cache the JWKS (``Cache-Control: max-age``).

        Half the publish delay at most: a verifier that fetched the JWKS just before a key
        was stored fetches again, and finds the key, before the key signs.
        """
        return jwks_max_age(self.publish_delay)

    async def status(self) -> list[KeyStatus]:
        """Every stored key, oldest first, with what it does now (signing, pending, ...)."""
        return key_statuses(await self.store.list_keys(), self.clock(), self.publish_delay)

    async def list(self) -> list[StoredKey]:
        """Every stored key, oldest first (records hide their material in ``repr``)."""
        return await self.store.list_keys()

    async def load(self) -> KeySet | None:
        """Load the stored keys without ever creating one; None when the store holds none.

        For processes and commands that do not sign (user administration, a session-only
        server publishing an operator's keys). Raises ConfigurationError when keys are
        stored but none is active. Never writes, unless this manager had already loaded
        keys that the store has since lost (see :meth:`reload`).
        """
        if self._read_and_load(await self._read_store()) is None:
            return None
        return self.keyset

    async def load_or_create(self, alg: str | None = None) -> KeySet:
        """Load the stored keys, creating the first one if the store has none.

        Raises ConfigurationError when the newest active key uses another algorithm than
        ``alg`` (change algorithms with :meth:`rotate`), or when keys exist but none is active.
        """
        alg = alg or self.alg
        newest = self._read_and_load(await self._read_store())
        if newest is None:
            candidate = generate_key(alg, created_at=self.clock()).to_stored(KeyState.ACTIVE)
            raw = await self.store.set_secret_if_absent(
                INITIAL_KEY_RECORD, _stored_to_json(candidate)
            )
            await self.store.save_key(_stored_from_json(raw))
            newest = self._load(await self.store.list_keys())
        if newest.alg != alg:
            raise ConfigurationError(
                f"The stored signing key uses {newest.alg}, not {alg}; rotate the keys "
                "to change algorithm."
            )
        return self.keyset

    async def reload(self) -> KeySet:
        """Re-read the store (after a rotation by another process).

        Keys this manager holds that the store has lost are saved back first, so a node
        never signs with a key other nodes cannot load.
        """
        self._load(await self._read_store())
        return self.keyset

    async def refresh(self, max_age: float | None = None) -> bool:
        """Re-read the store if the keys were loaded more than ``max_age`` seconds ago.

        ``max_age`` defaults to :attr:`reload_interval`. Keeps a node's view at most
        ``max_age`` old, so it learns of a rotation before the new key signs. A failed read
        keeps the loaded keys (logged) and is retried after ``max_age``. Returns True when
        the loaded keys changed since the previous call, by this re-read or any other
        (:meth:`published`, a :meth:`rotate` through this manager), so the caller can drop
        what it derived from them.
        """
        await self._reload_if_older(self.reload_interval if max_age is None else max_age)
        changed = self._fingerprint != self._reported
        self._reported = self._fingerprint
        return changed

    async def published(self) -> KeySet:
        """The keys to publish in the JWKS, re-read from the store if over a second old.

        Every process serving the JWKS lists a key from the moment it is stored, whether or
        not it signs or verifies anything meanwhile. Loads (never creates) keys on first
        use; raises ConfigurationError when there are none to publish.
        """
        if self._records is None:
            if await self.load() is None:
                raise ConfigurationError("No signing keys are stored.")
        else:
            await self._reload_if_older(JWKS_RELOAD_INTERVAL)
        return self.keyset

    async def rotate(
        self, alg: str | None = None, overlap: float | None = None, *, immediate: bool = False
    ) -> KeySet:
        """Publish a new key that signs once ``publish_delay`` has passed (F14).

        The current ACTIVE keys become PREVIOUS and verify until the new key starts signing
        plus ``overlap``. The new key is saved before the old ones are demoted, so an
        interruption leaves two verifying keys rather than none. Previous keys past their
        ``not_after`` are retired. ``immediate`` is for a compromised key: every other key
        is retired at once (their tokens stop verifying) and the new key signs now; nodes
        that have not reloaded reject its tokens until they do.
        """
        now = self.clock()
        overlap = self.overlap if overlap is None else _seconds("Key overlap", overlap)
        stored = await self._read_store()
        current = [k for k in stored if k.state is KeyState.ACTIVE]
        if alg is None:
            alg = max(current, key=rollout_order).alg if current else self.alg
        fresh = generate_key(alg, created_at=now)
        await self.store.save_key(fresh.to_stored(KeyState.ACTIVE))
        switch = now + self.publish_delay
        for key in stored:
            if immediate and key.state is not KeyState.RETIRED:
                key.state, key.not_after = KeyState.RETIRED, min(key.not_after or now, now)
            elif key.state is KeyState.ACTIVE:
                key.state, key.not_after = KeyState.PREVIOUS, switch + overlap
            elif key.state is KeyState.PREVIOUS and (key.not_after or 0.0) < now:
                key.state = KeyState.RETIRED
            else:
                continue
            await self.store.save_key(key)
        logger.info(
            "signing key published: kid=%s alg=%s signs from %s",
            fresh.kid,
            alg,
            "now" if immediate else f"{switch:.0f}",
        )
        return await self.reload()

    async def _reload_if_older(self, max_age: float) -> None:
        if self._records is None or self.clock() - self._loaded_at < max_age:
            return
        async with self._reading:
            now = self.clock()
            if now - self._loaded_at < max_age:
                return  # re-read by a concurrent caller while this one waited
            try:
                self._load(await self._read_store())
            except Exception as exc:
                self._loaded_at = now
                logger.warning(
                    "signing keys not refreshed, keeping loaded ones: %s", type(exc).__name__
                )

    async def _read_store(self) -> Sequence[StoredKey]:
        """The stored keys, after saving back any loaded key the store no longer has."""
        stored = await self.store.list_keys()
        if self._records is None:
            return stored
        now = self.clock()
        present = {record.kid for record in stored}
        missing = [r for r in self._records if r.kid not in present and is_usable(r, now)]
        if not missing:
            return stored
        # The store lost keys this node signs or verifies with (Redis restarted without
        # persistence, a restored backup). Converging on what the store holds now would
        # drop them here too, and every token issued with them, since the loss included,
        # would answer 401 "unknown key" everywhere. Saving them back keeps every token
        # valid, and every node loads them at its next reload. Should another node have
        # created a new first key meanwhile, both are stored and the publish-before-sign
        # rule picks the same signer on every node: ours, the older and published one,
        # until the newcomer's delay has passed.
        if not stored:
            # First writer wins: a process starting now agrees on our signing key through
            # the initial-key record instead of creating another one.
            signer = signing_record(missing, now, self.publish_delay)
            if signer is not None:
                await self.store.set_secret_if_absent(INITIAL_KEY_RECORD, _stored_to_json(signer))
        for record in missing:
            await self.store.save_key(record)
        logger.warning(
            "signing keys missing from the store were saved back: %s",
            ", ".join(r.kid for r in missing),
        )
        return await self.store.list_keys()

    def _read_and_load(self, stored: Sequence[StoredKey]) -> StoredKey | None:
        return self._load(stored) if stored else None

    def _load(self, stored: Sequence[StoredKey]) -> StoredKey:
        """Replace the loaded keys; returns the newest ACTIVE record (the rotation target)."""
        now = self.clock()
        active = [k for k in stored if k.state is KeyState.ACTIVE]
        if not active:
            raise ConfigurationError("No active signing key is stored; rotate the keys.")
        newest = max(active, key=rollout_order)
        keys = {newest.kid: key_from_stored(newest)}
        records = [newest]
        for record in stored:
            if record is newest or not is_usable(record, now):
                continue
            try:
                keys[record.kid] = key_from_stored(record)
            except ConfigurationError as exc:
                # A damaged old key only costs the tokens it signed; the newest active key
                # decides whether the process can start.
                logger.error("skipped unusable stored key %s: %s", record.kid, exc.detail)
                continue
            records.append(record)
        self._records, self._keys, self._keyset = records, keys, None
        self._keyset_from = self._keyset_until = -math.inf
        self._fingerprint = _fingerprint(stored)
        if self._reported is None:
            self._reported = self._fingerprint
        self._loaded_at = now
        return newest

    def __repr__(self) -> str:
        return f"KeyManager(alg={self.alg!r}, loaded={self._records is not None})"


def jwks_cache_control(manager: KeyManager | None) -> str:
    """The ``Cache-Control`` of a JWKS response: public, for less than the publish delay.

    ``manager`` is the :class:`KeyManager` behind the JWKS; None (no keys) gets the lifetime
    of the default publish delay.
    """
    if manager is not None:
        return f"public, max-age={manager.jwks_max_age}"
    return f"public, max-age={jwks_max_age(DEFAULT_PUBLISH_DELAY)}"


def _seconds(what: str, value: float) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0 <= value < math.inf:
        raise ConfigurationError(f"{what} must be a finite non-negative number of seconds.")
    return float(value)
