"""satchel's :class:`~satchel.stores.base.UserStore` over the project's own Django user model.

An existing Django project keeps its ``auth_user`` rows, their password hashes and
``request.user``. satchel reads and writes accounts only through this store:

- **ids** — ``str(user.pk)``; only the canonical spelling names a user ("7", never "07");
- **usernames** — looked up case-insensitively (``__iexact``) and kept only when
  :func:`~satchel.accounts.users.normalize_username` of the stored name equals the key, so
  ``Alice`` and ``ALICE`` are one login name; when two rows share a key neither can sign in
  by name (Django allows both, satchel cannot tell them apart);
- **passwords** — Django's own hashes (``pbkdf2_sha256$...``, ``argon2$argon2id$...``, bcrypt)
  verify as they are; a hash satchel writes (argon2id) is stored in Django's ``argon2$``
  spelling, so Django's ``check_password`` and the admin keep working. That needs
  ``Argon2PasswordHasher`` in ``PASSWORD_HASHERS`` (it is in Django's default list); the
  store refuses to start without it;
- **roles** — the names of the user's groups that are valid role names, plus ``staff`` and
  ``superuser`` for the two flags; writing roles keeps the other groups;
- **disabled** — ``not is_active``; **valid_after** / **updated_at** — the side table
  :class:`~satchel.integrations.django.models.AccountState`.

Every query runs on one worker thread of its own (Django's ORM is synchronous and its
connections belong to a thread); a database that is down answers 503.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import os
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

from satchel.accounts.users import ROLE_PATTERN, normalize_username
from satchel.errors import ConfigurationError, NotFound, SatchelError, StoreUnavailable, UserExists
from satchel.stores.base import UserRecord

logger = logging.getLogger("satchel.integrations.django")

T = TypeVar("T")

#: Roles that stand for the user model's two flags rather than for groups.
FLAG_ROLES = {"staff": "is_staff", "superuser": "is_superuser"}
_MAX_ID_CHARS = 128
_INT64 = 2**63

_local = threading.local()


def to_satchel_hash(django_hash: str) -> str:
    """Django's ``argon2$argon2id$...`` is satchel's ``$argon2id$...``; others pass as they are."""
    if django_hash.startswith("argon2$argon2"):
        return django_hash[len("argon2") :]
    return django_hash


def to_django_hash(satchel_hash: str) -> str:
    """The spelling of ``satchel_hash`` that Django's hashers verify."""
    if satchel_hash.startswith("$argon2"):
        return "argon2" + satchel_hash
    return satchel_hash


def writing_from_satchel() -> bool:
    """True inside this store's own writes (the signals must not react to them)."""
    return bool(getattr(_local, "writing", False))


@contextlib.contextmanager
def _satchel_writes() -> Iterator[None]:
    _local.writing = True
    try:
        yield
    finally:
        _local.writing = False


def _username_key(name: str) -> str | None:
    try:
        return normalize_username(name)
    except SatchelError:
        return None  # a stored name satchel would not accept: it cannot be looked up by name


class DjangoUserStore:
    """The :class:`~satchel.stores.base.UserStore` protocol over ``get_user_model()``."""

    def __init__(self, *, using: str = "default") -> None:
        from django.contrib.auth.hashers import get_hasher

        try:
            get_hasher("argon2")
        except ValueError:
            raise ConfigurationError(
                "satchel stores argon2id hashes: add "
                "'django.contrib.auth.hashers.Argon2PasswordHasher' to PASSWORD_HASHERS."
            ) from None
        self.using = using
        self._pool: ThreadPoolExecutor | None = None
        self._pid = 0

    def __repr__(self) -> str:
        return f"DjangoUserStore(using={self.using!r})"

    # --- plumbing ---------------------------------------------------------------------------

    def _executor(self) -> ThreadPoolExecutor:
        if self._pool is None or self._pid != os.getpid():  # threads do not survive fork()
            self._pool = ThreadPoolExecutor(1, thread_name_prefix="satchel-django-db")
            self._pid = os.getpid()
        return self._pool

    async def _run(self, fn: Callable[..., T], *args: Any) -> T:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(
            self._executor(), functools.partial(self._call, fn, *args)
        )

    def _call(self, fn: Callable[..., T], *args: Any) -> T:
        from django.db import DatabaseError, IntegrityError, connections

        try:
            with _satchel_writes():
                return fn(*args)
        except IntegrityError:
            raise UserExists() from None
        except DatabaseError as exc:
            logger.warning("django user store failed: %s: %s", type(exc).__name__, exc)
            with contextlib.suppress(Exception):
                connections[self.using].close()  # the next call reconnects
            raise StoreUnavailable() from exc

    @staticmethod
    def _model() -> Any:
        from django.contrib.auth import get_user_model

        return get_user_model()

    def _rows(self) -> Any:
        return self._model()._default_manager.db_manager(self.using).select_related("satchel_state")

    def _pk(self, user_id: object) -> Any:
        """The model's key for ``user_id``, or None when it cannot name a row."""
        from django.core.exceptions import ValidationError

        if not isinstance(user_id, str) or not 0 < len(user_id) <= _MAX_ID_CHARS:
            return None
        try:
            value = self._model()._meta.pk.to_python(user_id)
        except (ValidationError, ValueError, TypeError):
            return None
        if isinstance(value, int) and not -_INT64 <= value < _INT64:
            return None
        return value if str(value) == user_id else None

    def _record(self, user: Any) -> UserRecord:
        from django.core.exceptions import ObjectDoesNotExist

        try:
            state = user.satchel_state
            valid_after, updated_at = state.valid_after, state.updated_at
        except ObjectDoesNotExist:
            valid_after = updated_at = 0.0
        username = user.get_username()
        roles = sorted(
            {g.name for g in user.groups.all() if ROLE_PATTERN.fullmatch(g.name)}
            if hasattr(user, "groups")
            else set()
        )
        roles.extend(role for role, flag in FLAG_ROLES.items() if getattr(user, flag, False))
        joined = getattr(user, "date_joined", None)
        email = getattr(user, user.get_email_field_name(), None) or None
        return UserRecord(
            id=str(user.pk),
            username=username,
            username_key=_username_key(username) or username,
            password_hash=to_satchel_hash(user.password or ""),
            roles=sorted(set(roles)),
            disabled=not getattr(user, "is_active", True),
            created_at=joined.timestamp() if joined is not None else 0.0,
            updated_at=float(updated_at),
            valid_after=float(valid_after),
            email=email if isinstance(email, str) else None,
        )

    def _by_key(self, key: str) -> list[Any]:
        field = self._model().USERNAME_FIELD
        rows = self._rows().filter(**{f"{field}__iexact": key})
        return [u for u in rows if _username_key(u.get_username()) == key]

    # --- the protocol -----------------------------------------------------------------------

    async def get_user(self, user_id: str) -> UserRecord | None:
        """The account, or None (also for any string that cannot name one)."""
        return await self._run(self._get_user, user_id)

    def _get_user(self, user_id: str) -> UserRecord | None:
        pk = self._pk(user_id)
        if pk is None:
            return None
        user = self._rows().filter(pk=pk).first()
        return self._record(user) if user is not None else None

    async def get_user_by_name(self, username_key: str) -> UserRecord | None:
        """The one account whose normalised username is ``username_key``."""
        return await self._run(self._get_user_by_name, username_key)

    def _get_user_by_name(self, username_key: str) -> UserRecord | None:
        found = self._by_key(username_key)
        if len(found) > 1:
            logger.warning("%d Django accounts share one login name; none can sign in", len(found))
        return self._record(found[0]) if len(found) == 1 else None

    async def create_user(self, user: UserRecord) -> None:
        """Insert an account (``UserExists`` when the normalised name is taken)."""
        await self._run(self._create_user, user)

    def _create_user(self, record: UserRecord) -> None:
        from django.db import transaction

        with transaction.atomic(using=self.using):
            if self._by_key(record.username_key):
                raise UserExists()
            model = self._model()
            user = model(**{model.USERNAME_FIELD: record.username})
            self._apply(user, record)
            user.save(using=self.using)
            self._save_related(user, record)
        record.id = str(user.pk)

    async def update_user(self, user: UserRecord) -> None:
        """Replace the stored account (``NotFound`` when there is none)."""
        await self._run(self._update_user, user)

    def _update_user(self, record: UserRecord) -> None:
        from django.db import transaction

        pk = self._pk(record.id)
        with transaction.atomic(using=self.using):
            user = None if pk is None else self._rows().select_for_update().filter(pk=pk).first()
            if user is None:
                raise NotFound("No such user.")
            if user.get_username() != record.username:
                setattr(user, self._model().USERNAME_FIELD, record.username)
            self._apply(user, record)
            user.save(using=self.using)
            self._save_related(user, record)

    def _apply(self, user: Any, record: UserRecord) -> None:
        user.password = to_django_hash(record.password_hash)
        if hasattr(user, "is_active"):
            user.is_active = not record.disabled
        email_field = user.get_email_field_name()
        if hasattr(user, email_field):
            setattr(user, email_field, record.email or "")
        for role, flag in FLAG_ROLES.items():
            if hasattr(user, flag):
                setattr(user, flag, role in record.roles)

    def _save_related(self, user: Any, record: UserRecord) -> None:
        from django.contrib.auth.models import Group

        from satchel.integrations.django.models import AccountState

        if hasattr(user, "groups"):
            # Groups that are not role names (e.g. "Editors") are the project's own: kept.
            kept = [g for g in user.groups.all() if not ROLE_PATTERN.fullmatch(g.name)]
            wanted = [r for r in record.roles if r not in FLAG_ROLES]
            groups = [Group.objects.using(self.using).get_or_create(name=r)[0] for r in wanted]
            user.groups.set([*kept, *groups])
        AccountState.objects.using(self.using).update_or_create(
            user=user,
            defaults={"valid_after": record.valid_after, "updated_at": record.updated_at},
        )

    async def list_users(self, *, limit: int = 100, offset: int = 0) -> list[UserRecord]:
        """Accounts ordered by username."""
        return await self._run(self._list_users, limit, offset)

    def _list_users(self, limit: int, offset: int) -> list[UserRecord]:
        field = self._model().USERNAME_FIELD
        rows = self._rows().order_by(field)[offset : offset + limit]
        return [self._record(user) for user in rows]

    async def close(self) -> None:
        """Stop the worker thread (the database connection belongs to Django)."""
        pool, self._pool = self._pool, None
        if pool is not None:
            pool.shutdown(wait=False)
