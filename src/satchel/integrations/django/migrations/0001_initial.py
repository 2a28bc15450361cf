"""satchel's side table next to the project's user model."""

from __future__ import annotations

import django.db.models.deletion
from django.conf import settings
from django.db import migrations, models


class Migration(migrations.Migration):  # type: ignore[misc]
    initial = True

    # Django's own migration format: class-level lists.
    dependencies = [migrations.swappable_dependency(settings.AUTH_USER_MODEL)]  # noqa: RUF012

    operations = [  # noqa: RUF012
        migrations.CreateModel(
            name="AccountState",
            fields=[
                (
                    "user",
                    models.OneToOneField(
                        on_delete=django.db.models.deletion.CASCADE,
                        primary_key=True,
                        related_name="satchel_state",
                        serialize=False,
                        to=settings.AUTH_USER_MODEL,
                    ),
                ),
                ("valid_after", models.FloatField(default=0.0)),
                ("updated_at", models.FloatField(default=0.0)),
            ],
            options={"db_table": "satchel_account_state"},
        ),
    ]
