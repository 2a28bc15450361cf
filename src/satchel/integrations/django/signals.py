"""Changes made to accounts outside satchel end their satchel credentials too.

When a user's password changes or the account is deactivated through Django — the admin,
``set_password()``, ``manage.py changepassword`` — every credential satchel issued for it
so far is refused: ``valid_after`` moves to now in the same transaction (so every store
read refuses them at once), and after the commit the revocation goes out on satchel's bus
(so every process's cache drops them). Only with the ``"django"`` user provider, and never
for satchel's own writes.
"""

from __future__ import annotations

import logging
import time
from typing import Any

from django.contrib.auth import get_user_model
from django.db import transaction
from django.db.models.signals import post_save, pre_save

from satchel.errors import SatchelError
from satchel.integrations.django.users import writing_from_satchel

logger = logging.getLogger("satchel.integrations.django")

_WATCHED = frozenset({"password", "is_active"})
_BEFORE = "_satchel_before"


def connect() -> None:
    """Watch the project's user model (called from ``AppConfig.ready``)."""
    model = get_user_model()
    pre_save.connect(_before_save, sender=model, dispatch_uid="satchel-user-before")
    post_save.connect(_after_save, sender=model, dispatch_uid="satchel-user-after")


def _provider_is_django() -> bool:
    from satchel.integrations.django.conf import configuration

    try:
        return configuration()[1] == "django"
    except SatchelError:
        return False


def _before_save(sender: Any, instance: Any, raw: bool = False, **kwargs: Any) -> None:
    update_fields = kwargs.get("update_fields")
    if raw or instance.pk is None or writing_from_satchel():
        return
    if update_fields is not None and not _WATCHED & set(update_fields):
        return  # e.g. Django's own login updating last_login
    manager = sender._default_manager.using(kwargs.get("using") or "default")
    before = manager.filter(pk=instance.pk).values_list("password", "is_active").first()
    if before is not None:
        setattr(instance, _BEFORE, before)


def _after_save(sender: Any, instance: Any, created: bool = False, **kwargs: Any) -> None:
    before = instance.__dict__.pop(_BEFORE, None)
    if before is None or created or not _provider_is_django():
        return
    password, active = before
    if password == instance.password and not (active and not instance.is_active):
        return
    from satchel.integrations.django.models import AccountState

    using = kwargs.get("using") or "default"
    now = time.time()
    state, _ = AccountState.objects.using(using).get_or_create(user_id=instance.pk)
    state.valid_after = max(state.valid_after, now)
    state.updated_at = now
    state.save(using=using)
    user_id = str(instance.pk)
    transaction.on_commit(lambda: _broadcast(user_id), using=using)


def _broadcast(user_id: str) -> None:
    from satchel.integrations.django.conf import get_sync

    try:
        get_sync().call(lambda auth: auth.revoke_user_sessions(user_id))
    except Exception as exc:  # the row is already changed; caches hold it at most cache_ttl
        logger.error(
            "user %s changed but the revocation was not broadcast: %s", user_id, type(exc).__name__
        )
