"""Settings -> the DBSC binding of a configured :class:`~satchel.Auth` (``SATCHEL_DBSC*``)."""

from __future__ import annotations

import logging
import secrets
from collections.abc import Sequence
from typing import Final

from satchel.audit import AuditLog
from satchel.clock import Clock
from satchel.config.settings import Settings
from satchel.dbsc.binding import DbscConfig, DeviceBinding
from satchel.dbsc.cookie import BoundCookie
from satchel.errors import ConfigurationError
from satchel.stores.base import KeyStore
from satchel.stores.onetime import DeadlineOneTimeStore
from satchel.stores.onetime_backends import onetime_store_for
from satchel.strategies.base import Strategy
from satchel.strategies.session import SessionStrategy
from satchel.transports.base import Transport
from satchel.transports.cookie import CookieTransport

logger = logging.getLogger("satchel.dbsc")

#: Name of the DBSC secret (challenge hashes, bound cookie MACs) in the key store.
SECRET_NAME: Final = "dbsc"  # noqa: S105 (a name, not a secret)


async def device_binding(
    settings: Settings,
    keys: KeyStore,
    strategy: Strategy,
    transports: Sequence[Transport],
    audit: AuditLog,
    clock: Clock,
) -> DeviceBinding | None:
    """DBSC for the cookie sessions of ``strategy``; None when it does not apply.

    It applies with ``SATCHEL_DBSC=allowed``, the cookie transport and the session
    strategy, whose per-request store record is where the binding is checked; the jwt and
    hybrid strategies' cookies are signed tokens, and DBSC is not offered with them.
    """
    cookie = next((t for t in transports if isinstance(t, CookieTransport)), None)
    # The hybrid strategy is a SessionStrategy too, but its cookie is a signed token.
    if settings.dbsc == "off" or cookie is None or not isinstance(strategy, SessionStrategy):
        return None
    if strategy.name != SessionStrategy.name:
        return None
    try:
        store = onetime_store_for(keys)
    except ConfigurationError:
        # A key store that keeps no one-time records: the default must not stop the server.
        logger.warning("DBSC is not offered: the key store keeps no one-time challenges")
        return None
    secret = await keys.set_secret_if_absent(SECRET_NAME, secrets.token_bytes(32))
    tokens = DeadlineOneTimeStore(store, settings.store_timeout)
    config = DbscConfig(
        challenge_ttl=float(settings.dbsc_challenge_ttl),
        end_on_wrong_key=settings.dbsc_end_on_wrong_key,
    )
    return DeviceBinding(
        config,
        strategy=strategy,
        tokens=tokens,
        cookie=BoundCookie(cookie, secret, settings.dbsc_cookie_ttl),
        key=secret,
        audit=audit,
        clock=clock,
    )
