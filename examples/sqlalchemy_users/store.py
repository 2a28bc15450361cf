"""satchel's :class:`~satchel.stores.base.UserStore` over the application's own ``User`` model.

satchel speaks string ids; the table has integer keys. The conversion happens here, at the
boundary, and only canonical decimal strings ("7", never "07", "+7" or " 7") name a user, so
one account has exactly one id in sessions, tokens and audit records.
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import DBAPIError, IntegrityError, InterfaceError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from satchel import InvalidInput, NotFound, StoreUnavailable, UserExists
from satchel.stores.base import UserRecord

from .models import User, UserRole

_CANONICAL_ID = re.compile(r"[1-9][0-9]{0,9}")
_MAX_ID = 2**31 - 1  # INTEGER on PostgreSQL


def parse_user_id(user_id: object) -> int | None:
    """The table's key for satchel's ``user_id``, or None when it cannot name a row."""
    if not isinstance(user_id, str) or _CANONICAL_ID.fullmatch(user_id) is None:
        return None
    value = int(user_id)
    return value if value <= _MAX_ID else None


def _epoch(moment: datetime) -> float:
    # SQLite hands timestamps back without their zone; they were written in UTC.
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.timestamp()


def to_record(user: User) -> UserRecord:
    """The application's row as satchel sees it."""
    # satchel adds ``email`` (from ``UserRecord.email``) to every identity and token itself;
    # ``claims`` carries what only the application knows.
    claims: dict[str, Any] = {"tenant_id": user.tenant_id}
    return UserRecord(
        id=str(user.id),
        username=user.username,
        username_key=user.username_key,
        password_hash=user.password_hash,
        roles=[r.role for r in user.roles],
        disabled=not user.is_active,
        created_at=_epoch(user.created_at),
        updated_at=user.updated_at,
        valid_after=user.valid_after,
        email=user.email,
        claims=claims,
    )


def _set_roles(user: User, roles: list[str]) -> None:
    # Keep the rows that stay, so the flush deletes and inserts only what changed.
    wanted = set(roles)
    kept = [r for r in user.roles if r.role in wanted]
    have = {r.role for r in kept}
    user.roles = kept + [UserRole(role=name) for name in sorted(wanted - have)]


class SQLAlchemyUserStore:
    """Accounts read from and written to the application's ``users`` table.

    ``default_tenant_id`` is the tenant of accounts created through satchel itself
    (``UserService.create_user``), whose records carry no ``tenant_id`` claim.

    The engine belongs to the application: :meth:`close` leaves it open, and the
    application disposes of it when it shuts down.
    """

    def __init__(
        self, sessions: async_sessionmaker[AsyncSession], *, default_tenant_id: int | None = None
    ) -> None:
        self.sessions = sessions
        self.default_tenant_id = default_tenant_id

    def __repr__(self) -> str:
        return "SQLAlchemyUserStore()"

    @contextlib.contextmanager
    def _errors(self) -> Iterator[None]:
        """Database outages become satchel's 503, a duplicate name its 409; never a 500."""
        try:
            yield
        except IntegrityError as exc:
            raise UserExists() from exc
        except (OperationalError, InterfaceError, PoolTimeout, OSError) as exc:
            raise StoreUnavailable("The user database is unavailable.") from exc
        except DBAPIError as exc:
            if exc.connection_invalidated:
                raise StoreUnavailable("The user database is unavailable.") from exc
            raise

    async def create_user(self, user: UserRecord) -> None:
        """Insert a row; the database assigns the id, written back into ``user.id``.

        satchel's ``UserService.create_user`` returns the record it passed in, so its
        caller sees the integer id too (the protocol returns nothing).
        """
        tenant = user.claims.get("tenant_id", self.default_tenant_id)
        if type(tenant) is not int:
            raise InvalidInput("A new account needs a tenant_id.")
        row = User(
            username=user.username,
            username_key=user.username_key,
            email=user.email,
            password_hash=user.password_hash,
            is_active=not user.disabled,
            tenant_id=tenant,
            valid_after=user.valid_after,
            updated_at=user.updated_at,
            roles=[UserRole(role=name) for name in sorted(set(user.roles))],
        )
        if user.created_at > 0:
            row.created_at = datetime.fromtimestamp(user.created_at, UTC)
        with self._errors():
            async with self.sessions.begin() as session:
                session.add(row)
        user.id = str(row.id)

    async def get_user(self, user_id: str) -> UserRecord | None:
        """By id; None for a string that is not a canonical integer id."""
        key = parse_user_id(user_id)
        if key is None:
            return None
        with self._errors():
            async with self.sessions() as session:
                row = await session.get(User, key)
                return to_record(row) if row is not None else None

    async def get_user_by_name(self, username_key: str) -> UserRecord | None:
        """By normalised username."""
        with self._errors():
            async with self.sessions() as session:
                found = await session.scalars(select(User).where(User.username_key == username_key))
                row = found.one_or_none()
                return to_record(row) if row is not None else None

    async def update_user(self, user: UserRecord) -> None:
        """Write satchel's view of the account back to its row (matched by id).

        ``claims`` are computed from the application's columns and are not written back:
        ``tenant_id`` belongs to the application.
        """
        key = parse_user_id(user.id)
        if key is None:
            raise NotFound("No such user.")
        with self._errors():
            async with self.sessions.begin() as session:
                row = await session.get(User, key)
                if row is None:
                    raise NotFound("No such user.")
                row.username = user.username
                row.username_key = user.username_key
                row.email = user.email
                row.password_hash = user.password_hash
                row.is_active = not user.disabled
                row.valid_after = user.valid_after
                row.updated_at = user.updated_at
                _set_roles(row, user.roles)

    async def list_users(self, *, limit: int = 100, offset: int = 0) -> list[UserRecord]:
        """Users ordered by normalised username."""
        query = select(User).order_by(User.username_key, User.id).limit(limit).offset(offset)
        with self._errors():
            async with self.sessions() as session:
                return [to_record(row) for row in await session.scalars(query)]

    async def close(self) -> None:
        """Nothing to release: the application owns the engine."""
