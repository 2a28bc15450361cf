"""An operator's HS256 secret as the one signing key (``SATCHEL_JWT_SECRET``).

Some services cannot fetch a JWKS and verify tokens with a shared secret instead. Then the
secret is the operator's, not the store's: :class:`OperatorKeyManager` signs and verifies
with it alone, reads and writes no key record, and cannot rotate (the operator changes the
setting and restarts; tokens signed with the old secret stop verifying). The secret never
appears in the JWKS, a ``repr`` or a log line.
"""

from __future__ import annotations

from satchel.clock import Clock, system_clock
from satchel.errors import ConfigurationError, NotSupported
from satchel.jose.jwa import HS256Key
from satchel.jose.keyset import KeySet
from satchel.jose.signing_key import MIN_HMAC_SECRET
from satchel.keys.manager import KeyManager
from satchel.keys.schedule import KeyStatus
from satchel.stores.base import KeyStore, StoredKey

#: The ``kid`` of tokens signed with the operator's secret.
OPERATOR_KID = "operator"


class OperatorKeyManager(KeyManager):
    """A :class:`KeyManager` whose only key is the operator's HS256 ``secret``."""

    def __init__(
        self,
        store: KeyStore,
        secret: bytes,
        clock: Clock = system_clock,
        *,
        publish_delay: float = 120.0,
        reload_interval: float | None = None,
    ) -> None:
        if len(secret) < MIN_HMAC_SECRET:
            raise ConfigurationError(
                f"SATCHEL_JWT_SECRET must be at least {MIN_HMAC_SECRET} bytes."
            )
        super().__init__(
            store,
            clock,
            alg="HS256",
            publish_delay=publish_delay,
            reload_interval=reload_interval,
        )
        self._operator = KeySet(HS256Key(OPERATOR_KID, secret))

    @property
    def keyset(self) -> KeySet:
        return self._operator

    async def status(self) -> list[KeyStatus]:
        return []

    async def list(self) -> list[StoredKey]:
        return []

    async def load(self) -> KeySet | None:
        return self._operator

    async def load_or_create(self, alg: str | None = None) -> KeySet:
        if alg not in (None, "HS256"):
            raise ConfigurationError("SATCHEL_JWT_SECRET signs with HS256 only.")
        return self._operator

    async def reload(self) -> KeySet:
        return self._operator

    async def refresh(self, max_age: float | None = None) -> bool:
        return False

    async def published(self) -> KeySet:
        return self._operator

    async def rotate(
        self, alg: str | None = None, overlap: float | None = None, *, immediate: bool = False
    ) -> KeySet:
        raise NotSupported(
            "The signing key is SATCHEL_JWT_SECRET: change the setting to rotate it."
        )

    def __repr__(self) -> str:
        return "OperatorKeyManager(alg='HS256')"
