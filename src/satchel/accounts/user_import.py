"""Loading accounts moved from another system: one JSON object per line, pre-hashed passwords.

Each line is ``{"username": ..., "password_hash": ..., "roles": [...]}`` with optional
``id``, ``email`` and ``disabled``. Usernames and roles are normalised exactly as
:class:`~satchel.accounts.users.UserService` does; the hash must be in a format of
:mod:`satchel.accounts.hash_formats` and is kept as it is until the user's first sign-in
rehashes it. A bad line is refused with its number and the reason (never its hash) and the
others still load. Accounts reach the store in batches through
:class:`~satchel.stores.base.BulkUserStore` when the store has it, else one by one.
"""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Final

from satchel.accounts.hash_formats import UnsupportedHashFormat, identify_hash
from satchel.accounts.users import (
    MAX_USER_ID_CHARS,
    display_username,
    new_user_id,
    normalize_roles,
    normalize_username,
)
from satchel.audit import safe_text
from satchel.clock import Clock, system_clock
from satchel.errors import InvalidInput, UserExists
from satchel.stores.base import BulkUserStore, UserRecord, UserStore

#: Longest accepted line, in bytes (a record is a few hundred).
MAX_LINE_BYTES: Final = 64 * 1024
DEFAULT_BATCH_SIZE: Final = 1000
MAX_BATCH_SIZE: Final = 10_000
MAX_EMAIL_CHARS: Final = 254
#: Stores without ``create_users`` get this many ``create_user`` calls at a time.
FALLBACK_CONCURRENCY: Final = 8

FIELDS: Final = frozenset({"username", "password_hash", "roles", "id", "email", "disabled"})
_REQUIRED: Final = ("username", "password_hash", "roles")
# Ids end up in URLs, logs and admin pages: plain characters only (UUIDs and numbers fit).
_USER_ID: Final = re.compile(rf"[A-Za-z0-9._~:@+-]{{1,{MAX_USER_ID_CHARS}}}")
_EMAIL: Final = re.compile(r"[^@\s]+@[^@\s]+")


class ImportLineError(ValueError):
    """A line that cannot become an account; ``reason`` never quotes the password hash."""

    def __init__(self, reason: str) -> None:
        self.reason = reason
        super().__init__(reason)


@dataclass(frozen=True, slots=True)
class RefusedLine:
    """One line that was not imported, and why."""

    line: int
    reason: str


@dataclass(slots=True)
class ImportReport:
    """What an import did so far (filled in as it goes, so a failure keeps the counts)."""

    imported: int = 0
    refused: list[RefusedLine] = field(default_factory=list)

    def refuse(self, line: int, reason: str) -> None:
        """Record line ``line`` as refused for ``reason``."""
        self.refused.append(RefusedLine(line, reason))

    def sorted_refusals(self) -> list[RefusedLine]:
        """The refused lines in file order (store conflicts are found a batch later)."""
        return sorted(self.refused, key=lambda refused: refused.line)


def _field(name: object) -> str:
    return repr(safe_text(name, 40))


def _optional_id(value: object) -> str:
    if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
        value = str(value)
    if not isinstance(value, str) or _USER_ID.fullmatch(value) is None:
        raise ImportLineError(
            f"id must be a non-negative integer or 1-{MAX_USER_ID_CHARS} characters of "
            "letters, digits and ._~:@+-"
        )
    return value


def _optional_email(value: object) -> str | None:
    if value is None:
        return None
    if (
        not isinstance(value, str)
        or len(value) > MAX_EMAIL_CHARS
        or not value.isprintable()
        or _EMAIL.fullmatch(value) is None
    ):
        raise ImportLineError(f"email must be an address of at most {MAX_EMAIL_CHARS} characters")
    return value


def parse_user_line(raw: bytes | str, *, now: float) -> UserRecord:
    """The account a line describes, or :class:`ImportLineError` with the reason."""
    if len(raw) > MAX_LINE_BYTES:
        raise ImportLineError(f"line longer than {MAX_LINE_BYTES} bytes")
    try:
        text = raw.decode("utf-8") if isinstance(raw, bytes) else raw
        data: Any = json.loads(text)
    except UnicodeDecodeError:
        raise ImportLineError("not valid UTF-8") from None
    except json.JSONDecodeError as exc:
        # The message is positional only ("Expecting ',' delimiter"): it never quotes input.
        raise ImportLineError(f"invalid JSON: {exc.msg} at column {exc.colno}") from None
    except RecursionError:
        raise ImportLineError("invalid JSON: nested too deeply") from None
    if not isinstance(data, dict):
        raise ImportLineError("not a JSON object")
    unknown = sorted(str(key) for key in data if key not in FIELDS)
    if unknown:
        raise ImportLineError(f"unknown field {_field(unknown[0])}")
    missing = [name for name in _REQUIRED if name not in data]
    if missing:
        raise ImportLineError(f"missing field {_field(missing[0])}")
    try:
        display = display_username(data["username"])
        key = normalize_username(data["username"])
    except InvalidInput as exc:
        raise ImportLineError(f"username: {exc.detail}") from None
    password_hash = data["password_hash"]
    try:
        identify_hash(password_hash)
    except UnsupportedHashFormat as exc:
        raise ImportLineError(f"password_hash: {exc.reason}") from None
    if not isinstance(data["roles"], list):
        raise ImportLineError("roles must be a list of role names")
    try:
        roles = normalize_roles(data["roles"])
    except InvalidInput as exc:
        raise ImportLineError(f"roles: {exc.detail}") from None
    disabled = data.get("disabled", False)
    if not isinstance(disabled, bool):
        raise ImportLineError("disabled must be true or false")
    user_id = _optional_id(data["id"]) if "id" in data else new_user_id()
    return UserRecord(
        id=user_id,
        username=display,
        username_key=key,
        password_hash=password_hash,
        roles=roles,
        disabled=disabled,
        created_at=now,
        updated_at=now,
        email=_optional_email(data.get("email")),
    )


class UserImporter:
    """Feeds lines in, refuses the bad ones, writes the good ones to ``store`` in batches.

    Call :meth:`add` for every line, then :meth:`finish`. Store errors other than a taken
    name or id propagate; :attr:`report` still holds what was done before.
    """

    def __init__(
        self,
        store: UserStore,
        *,
        batch_size: int = DEFAULT_BATCH_SIZE,
        clock: Clock = system_clock,
        report: ImportReport | None = None,
    ) -> None:
        if not 1 <= batch_size <= MAX_BATCH_SIZE:
            raise InvalidInput(f"The batch size must be between 1 and {MAX_BATCH_SIZE}.")
        self.store = store
        self.batch_size = batch_size
        self.clock = clock
        self.report = report if report is not None else ImportReport()
        self._bulk = isinstance(store, BulkUserStore)
        # First line of each username, id and email seen in this file, for duplicates.
        self._names: dict[str, int] = {}
        self._ids: dict[str, int] = {}
        self._emails: dict[str, int] = {}
        self._batch: list[tuple[int, UserRecord]] = []

    def __repr__(self) -> str:
        return f"UserImporter(store={type(self.store).__name__}, batch_size={self.batch_size})"

    async def add(self, line: int, raw: bytes | str) -> None:
        """Parse line number ``line``; queue it for the store or record why it is refused."""
        if not raw.strip():
            return
        try:
            user = parse_user_line(raw, now=self.clock())
            self._check_unique(line, user)
        except ImportLineError as exc:
            self.report.refuse(line, exc.reason)
            return
        self._batch.append((line, user))
        if len(self._batch) >= self.batch_size:
            await self.flush()

    def _check_unique(self, line: int, user: UserRecord) -> None:
        for seen, value, what in (
            (self._names, user.username_key, "username"),
            (self._ids, user.id, "id"),
            (self._emails, user.email, "email"),
        ):
            if value is not None and value in seen:
                raise ImportLineError(f"duplicate {what}: same as line {seen[value]}")
        self._names[user.username_key] = line
        self._ids[user.id] = line
        if user.email is not None:
            self._emails[user.email] = line

    async def flush(self) -> None:
        """Write the queued accounts now."""
        batch, self._batch = self._batch, []
        if not batch:
            return
        if self._bulk:
            await self._write_bulk(batch)
        else:
            await self._write_one_by_one(batch)

    async def finish(self) -> ImportReport:
        """Write what is still queued; the final report."""
        await self.flush()
        return self.report

    async def _write_bulk(self, batch: Sequence[tuple[int, UserRecord]]) -> None:
        assert isinstance(self.store, BulkUserStore)
        lines: dict[str, tuple[int, UserRecord]] = {}
        for line, user in batch:
            lines[user.username] = lines[user.username_key] = (line, user)
        taken = await self.store.create_users([user for _, user in batch])
        refused = dict(lines[name] for name in taken if name in lines)
        for line, user in sorted(refused.items()):
            self.report.refuse(line, await self._conflict(user))
        self.report.imported += len(batch) - len(refused)

    async def _write_one_by_one(self, batch: Sequence[tuple[int, UserRecord]]) -> None:
        for start in range(0, len(batch), FALLBACK_CONCURRENCY):
            chunk = batch[start : start + FALLBACK_CONCURRENCY]
            results = await asyncio.gather(
                *(self.store.create_user(user) for _, user in chunk), return_exceptions=True
            )
            failure: BaseException | None = None
            for (line, user), result in zip(chunk, results, strict=True):
                if isinstance(result, UserExists):
                    self.report.refuse(line, await self._conflict(user))
                elif isinstance(result, BaseException):
                    failure = failure or result
                else:
                    self.report.imported += 1
            if failure is not None:
                # Only once the whole chunk has finished, so no write runs on behind the error.
                raise failure

    async def _conflict(self, user: UserRecord) -> str:
        # Conflicts are rare, so one more read to say which value is taken is cheap.
        if await self.store.get_user_by_name(user.username_key) is not None:
            return "username already exists in the store"
        if await self.store.get_user(user.id) is not None:
            return "id already exists in the store"
        return "already exists in the store (id or email taken)"
