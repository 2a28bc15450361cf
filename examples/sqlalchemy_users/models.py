"""The application's own tables: SQLAlchemy 2.0 ORM models with integer primary keys.

Most columns are what any application has. Three are added for satchel (marked below):
``username_key`` (the unique, normalised login name), ``valid_after`` and ``updated_at``.
"""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import Boolean, DateTime, Double, ForeignKey, Integer, String, Text
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship


def utcnow() -> datetime:
    """Now, as an aware UTC datetime."""
    return datetime.now(UTC)


class Base(DeclarativeBase):
    """Declarative base of the application's models."""


class User(Base):
    """An account of the application."""

    __tablename__ = "users"
    # SQLite reuses the largest rowid after a delete unless AUTOINCREMENT is on; a reused id
    # would inherit the deleted user's sessions and tokens (satchel keys them by user id).
    __table_args__ = {"sqlite_autoincrement": True}  # noqa: RUF012 - SQLAlchemy's own form

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    username: Mapped[str] = mapped_column(String(150))
    email: Mapped[str | None] = mapped_column(String(320), unique=True)
    # Never a plaintext password: an argon2id hash (or a legacy hash satchel upgrades).
    password_hash: Mapped[str] = mapped_column(Text)
    is_active: Mapped[bool] = mapped_column(Boolean, default=True)
    tenant_id: Mapped[int] = mapped_column(Integer, index=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)

    # --- added for satchel ----------------------------------------------------------------
    #: ``satchel.accounts.users.normalize_username(username)``: NFKC + casefold. Unique, so
    #: "Alice" and "ALICE" cannot be two accounts.
    username_key: Mapped[str] = mapped_column(String(150), unique=True)
    #: Epoch seconds; credentials issued before it are refused. A double, never rounded: a
    #: value rounded down would let a credential issued just before a revocation live on.
    valid_after: Mapped[float] = mapped_column(Double, default=0.0)
    #: Epoch seconds of satchel's last change to the row.
    updated_at: Mapped[float] = mapped_column(Double, default=0.0)

    roles: Mapped[list[UserRole]] = relationship(
        cascade="all, delete-orphan",
        lazy="selectin",  # loaded with the user: async sessions cannot lazy-load later
        order_by="UserRole.role",
    )

    def __repr__(self) -> str:
        return f"User(id={self.id!r}, username={self.username!r}, tenant_id={self.tenant_id!r})"


class UserRole(Base):
    """One role of one user (names follow satchel's rule: ``[a-z0-9_-]{1,32}``)."""

    __tablename__ = "user_roles"

    user_id: Mapped[int] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE"), primary_key=True
    )
    role: Mapped[str] = mapped_column(String(32), primary_key=True)
