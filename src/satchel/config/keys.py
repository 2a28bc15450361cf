"""The signing keys of :class:`Settings`: their timing, and the manager that holds them."""

from __future__ import annotations

from satchel.clock import Clock, system_clock
from satchel.config.settings import Settings
from satchel.errors import ConfigurationError
from satchel.keys.manager import KeyManager
from satchel.keys.schedule import default_reload_interval
from satchel.stores.base import KeyStore

__all__ = ["key_manager", "key_timing"]


def key_timing(settings: Settings) -> tuple[float, float]:
    """``(publish delay, reload interval)`` of the signing keys; the interval defaults to
    what keeps ``delay >= 2 x interval`` (60 s at most)."""
    delay = settings.key_publish_delay
    if "key_reload_interval" in settings.model_fields_set:
        return delay, settings.key_reload_interval
    return delay, default_reload_interval(delay)


def key_manager(settings: Settings, store: KeyStore, clock: Clock = system_clock) -> KeyManager:
    """The signing keys of ``settings``: the store's, or ``SATCHEL_JWT_SECRET`` alone."""
    delay, interval = key_timing(settings)
    if settings.jwt_secret is not None:
        from satchel.keys.operator import OperatorKeyManager

        if settings.jwt_alg != "HS256":
            raise ConfigurationError("SATCHEL_JWT_SECRET needs SATCHEL_JWT_ALG=HS256.")
        return OperatorKeyManager(
            store,
            settings.jwt_secret.get_secret_value().encode("utf-8"),
            clock,
            publish_delay=delay,
            reload_interval=interval,
        )
    return KeyManager(
        store, clock, alg=settings.jwt_alg, publish_delay=delay, reload_interval=interval
    )
