"""The Django app: ``INSTALLED_APPS += ["satchel.integrations.django"]`` (label ``satchel``)."""

from __future__ import annotations

from django.apps import AppConfig


class SatchelConfig(AppConfig):  # type: ignore[misc]
    """satchel's side table next to ``auth_user`` and the signals that keep it honest."""

    name = "satchel.integrations.django"
    label = "satchel"
    verbose_name = "satchel"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from satchel.integrations.django import signals

        signals.connect()
