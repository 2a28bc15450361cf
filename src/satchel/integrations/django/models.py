"""What satchel keeps beside Django's user table: one row per account it has seen.

``auth_user`` has no place for "every credential issued before this instant is refused"
(``valid_after``: set by a password change, a disable, "log out everywhere") nor for the
last change satchel made (``updated_at``). An account without a row has never had either:
both read as 0.
"""

from __future__ import annotations

from django.conf import settings
from django.db import models


class AccountState(models.Model):  # type: ignore[misc]
    """satchel's facts about one account of ``AUTH_USER_MODEL``."""

    user = models.OneToOneField(
        settings.AUTH_USER_MODEL,
        on_delete=models.CASCADE,
        primary_key=True,
        related_name="satchel_state",
    )
    #: Epoch seconds; credentials issued earlier are refused. Only ever moves forward.
    valid_after = models.FloatField(default=0.0)
    #: Epoch seconds of satchel's last change to the account.
    updated_at = models.FloatField(default=0.0)

    class Meta:
        db_table = "satchel_account_state"

    def __str__(self) -> str:
        return f"AccountState(user={self.pk})"
