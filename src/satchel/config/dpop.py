"""Settings -> the DPoP guard of a configured :class:`~satchel.Auth` (``SATCHEL_DPOP*``)."""

from __future__ import annotations

import secrets

from satchel.audit import AuditLog
from satchel.clock import Clock
from satchel.config.settings import Settings
from satchel.dpop.guard import DPoPGuard
from satchel.dpop.nonce import SECRET_NAME, NonceKey
from satchel.errors import ConfigurationError
from satchel.stores.base import Stores
from satchel.stores.deadline import with_deadline
from satchel.stores.onetime import DeadlineOneTimeStore, OneTimeTokenStore
from satchel.stores.onetime_backends import onetime_store_for


def _replay_store(stores: Stores) -> OneTimeTokenStore:
    try:
        return onetime_store_for(stores.sessions)
    except ConfigurationError:  # an application's own session store: satchel's main one
        return onetime_store_for(stores.keys)


async def dpop_guard(
    settings: Settings, stores: Stores, clock: Clock, audit: AuditLog
) -> DPoPGuard | None:
    """The guard of ``settings`` (None when ``SATCHEL_DPOP=off``).

    Its replay cache is the one-time token table of the sessions backend (the store every
    request already uses: Redis when ``SATCHEL_SESSIONS_STORE`` is Redis), so every process
    of the deployment shares it; the nonce key is a key-store secret, shared the same way.
    """
    if settings.dpop == "off":
        return None
    nonces = None
    if settings.dpop_nonce:
        keys = with_deadline(stores, settings.store_timeout).keys
        secret = await keys.set_secret_if_absent(SECRET_NAME, secrets.token_bytes(32))
        nonces = NonceKey(secret, float(settings.dpop_nonce_ttl))
    return DPoPGuard(
        DeadlineOneTimeStore(_replay_store(stores), settings.store_timeout),
        mode=settings.dpop,
        audit=audit,
        clock=clock,
        nonces=nonces,
        public_url=settings.public_url,
        max_age=float(settings.dpop_max_age),
    )
