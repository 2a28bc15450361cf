"""Django settings -> the process's :class:`~satchel.integrations.sync.SyncAuth`.

``settings.SATCHEL`` is a dict of :class:`~satchel.Settings` fields (anything not in it comes
from the ``SATCHEL_*`` environment, as everywhere) plus one key of this integration:

``"users"``
    ``"django"`` (the default when ``django.contrib.auth`` is installed): accounts are the
    project's own user model (:class:`~satchel.integrations.django.users.DjangoUserStore`);
    ``"satchel"``: satchel's store keeps them, e.g. to share accounts with a FastAPI or
    Flask service on the same store.

The :class:`SyncAuth` is built on first use in each process (after gunicorn's fork) and
rebuilt when a test changes ``SATCHEL`` with ``override_settings``.
"""

from __future__ import annotations

import threading
from typing import Any, Final

from django.conf import settings as django_settings
from django.core.signals import setting_changed

from satchel.errors import ConfigurationError
from satchel.integrations.sync import SyncAuth

SETTING: Final = "SATCHEL"
USER_PROVIDERS: Final = ("django", "satchel")

_lock = threading.Lock()
_current: SyncAuth | None = None
_provider: str | None = None


def configuration() -> tuple[dict[str, Any], str]:
    """The :class:`~satchel.Settings` fields of ``settings.SATCHEL`` and the user provider."""
    raw = getattr(django_settings, SETTING, None) or {}
    if not isinstance(raw, dict):
        raise ConfigurationError("settings.SATCHEL must be a dict of satchel settings.")
    fields = {key.lower(): value for key, value in raw.items()}
    default = "django" if "django.contrib.auth" in django_settings.INSTALLED_APPS else "satchel"
    provider = fields.pop("users", default)
    if provider not in USER_PROVIDERS:
        raise ConfigurationError("settings.SATCHEL['users'] must be 'django' or 'satchel'.")
    return fields, provider


def users_provider() -> str:
    """``"django"`` or ``"satchel"``: where the accounts live."""
    get_sync()
    assert _provider is not None
    return _provider


def get_sync() -> SyncAuth:
    """The process's :class:`SyncAuth` for ``settings.SATCHEL`` (built on first use)."""
    global _current, _provider
    current = _current
    if current is not None:
        return current
    with _lock:
        if _current is None:
            from satchel.config.settings import Settings

            fields, provider = configuration()
            users = None
            if provider == "django":
                from satchel.integrations.django.users import DjangoUserStore

                users = DjangoUserStore()
            options = getattr(django_settings, "SATCHEL_OPTIONS", None) or {}
            _current = SyncAuth(Settings(**fields), users=users, **options)
            _provider = provider
        return _current


def reset() -> None:
    """Close the current :class:`SyncAuth`; the next request builds a new one."""
    global _current, _provider
    with _lock:
        current, _current, _provider = _current, None, None
    if current is not None:
        current.close()


def _on_setting_changed(*, setting: str, **_: Any) -> None:
    if setting in (SETTING, "SATCHEL_OPTIONS"):
        reset()


setting_changed.connect(_on_setting_changed, dispatch_uid="satchel-settings")
