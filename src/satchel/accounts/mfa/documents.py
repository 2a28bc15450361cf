"""Reading and changing an account's factor document, and the keys the factors need.

Every change is a compare-and-set (:class:`~satchel.stores.factors.FactorStore`): read the
document and its version, apply a pure change, write it back only if nobody wrote in
between, else read again and retry. That is what makes a TOTP step, a recovery code or a
passkey signature count once, even when two requests race with it.

Every store call is bounded by ``timeout`` and fails closed: a slow or broken store raises
:class:`~satchel.errors.StoreUnavailable` (503), never lets a code through.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
from collections.abc import Awaitable, Callable
from typing import TypeVar

from satchel.accounts.mfa import factors as factors_mod
from satchel.accounts.mfa.factors import Factors
from satchel.errors import CorruptRecord, SatchelError, StoreUnavailable
from satchel.stores.base import KeyStore
from satchel.stores.factors import FactorStore

logger = logging.getLogger("satchel.mfa")

_T = TypeVar("_T")
_RETRIES = 8

#: A change: mutate the document, return (result, whether to write it).
Change = Callable[[Factors], tuple[_T, bool]]


class FactorDocuments:
    """The factor documents in ``store``; the factor keys in ``keys``."""

    def __init__(self, store: FactorStore, keys: KeyStore, *, timeout: float = 2.0) -> None:
        self.store = store
        self.keys = keys
        self.timeout = timeout
        self._secrets: dict[str, bytes] = {}

    def __repr__(self) -> str:
        return f"FactorDocuments({self.store!r})"

    async def io(self, operation: Awaitable[_T]) -> _T:
        """Await a store call within the deadline; any failure is a 503."""
        try:
            async with asyncio.timeout(self.timeout):
                return await operation
        except SatchelError:
            raise
        except Exception as exc:
            logger.warning("second-factor store failed: %s", type(exc).__name__)
            raise StoreUnavailable() from exc

    async def secret(self, name: str) -> bytes:
        """A 32-byte key of the key store (the first process to ask creates it)."""
        found = self._secrets.get(name)
        if found is None:
            found = await self.io(self.keys.set_secret_if_absent(name, secrets.token_bytes(32)))
            self._secrets[name] = found
        return found

    async def read(self, user_id: str) -> Factors:
        """The account's factors (an empty record when it has none)."""
        raw, _ = await self.io(self.store.load(user_id))
        return self._decode(user_id, raw)

    async def update(self, user_id: str, change: Change[_T]) -> _T:
        """Apply ``change`` with a compare-and-set, retrying when another write came first."""
        for _ in range(_RETRIES):
            raw, version = await self.io(self.store.load(user_id))
            document = self._decode(user_id, raw)
            result, write = change(document)
            if not write:
                return result
            if await self.io(self.store.save(user_id, factors_mod.encode(document), version)):
                return result
        raise StoreUnavailable("The account is being changed by another request; try again.")

    async def remove(self, user_id: str) -> bool:
        """Forget every factor of the account."""
        return await self.io(self.store.remove(user_id))

    @staticmethod
    def _decode(user_id: str, raw: str | None) -> Factors:
        try:
            return factors_mod.decode(raw)
        except CorruptRecord:
            # Failing closed: an unreadable record must not read as "no second factor".
            logger.error("second-factor record of user %s is unreadable", user_id)
            raise StoreUnavailable("The account's second factors cannot be read.") from None
