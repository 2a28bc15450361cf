"""Accounts: username normalisation, password checks and the user life cycle.

All I/O goes through a :class:`satchel.stores.base.UserStore`. Login failures are
deliberately indistinguishable: unknown user, wrong password and disabled account each do
exactly one password verification and raise the same :class:`satchel.errors.InvalidLogin`.

Accounts imported with another system's hash (bcrypt, Django PBKDF2, other argon2 variants
or parameters; see :mod:`satchel.accounts.hash_formats`) sign in with it once and are
rehashed to argon2id on that sign-in.
"""

from __future__ import annotations

import hmac
import logging
import re
import secrets
import unicodedata
from collections.abc import Iterable
from typing import Final

from satchel.accounts.hash_formats import UnsupportedHashFormat, identify_hash
from satchel.accounts.passwords import PasswordHasher, check_new_password, check_password_length
from satchel.clock import Clock, system_clock
from satchel.errors import InvalidInput, InvalidLogin, NotFound
from satchel.stores.base import UserRecord, UserStore

logger = logging.getLogger("satchel.users")

MAX_USERNAME_CHARS: Final = 150
MAX_USER_ID_CHARS: Final = 128
MAX_ROLES: Final = 64
MAX_LIST_LIMIT: Final = 1000
ROLE_PATTERN: Final = re.compile(r"[a-z0-9_-]{1,32}")

# Control, format (zero-width, bidi overrides), surrogate, private-use and unassigned code
# points, and line/paragraph separators: invisible or spoofable in a name shown to admins.
_FORBIDDEN_CATEGORIES: Final = frozenset({"Cc", "Cf", "Cs", "Co", "Cn", "Zl", "Zp"})


def _check_username_text(text: str) -> None:
    if not text:
        raise InvalidInput("The username must not be empty.")
    if len(text) > MAX_USERNAME_CHARS:
        raise InvalidInput(f"The username must be at most {MAX_USERNAME_CHARS} characters.")
    for ch in text:
        if unicodedata.category(ch) in _FORBIDDEN_CATEGORIES:
            raise InvalidInput("The username contains control or invisible characters.")
        if ch.isspace() and ch != " ":
            raise InvalidInput("The username may contain plain spaces only.")


def display_username(name: object) -> str:
    """The username as shown: NFC, surrounding whitespace removed, validated."""
    if not isinstance(name, str):
        raise InvalidInput("The username must be a string.")
    # Bound the work of normalising hostile input; composition rarely shrinks text at all.
    if len(name) > 4 * MAX_USERNAME_CHARS:
        raise InvalidInput(f"The username must be at most {MAX_USERNAME_CHARS} characters.")
    text = unicodedata.normalize("NFC", name).strip()
    _check_username_text(text)
    return text


def normalize_username(name: object) -> str:
    """The unique lookup key of a username: NFKC + casefold, stripped.

    ``"Ｂob"`` and ``"bob"`` give the same key, as do ``"STRASSE"`` and ``"straße"``.
    Raises :class:`InvalidInput` for empty, over-long (> 150 characters) names and names
    with control or invisible characters.
    """
    display = display_username(name)
    # Casefolding can leave text that is not NFKC-normal again, hence the second pass.
    key = unicodedata.normalize("NFKC", unicodedata.normalize("NFKC", display).casefold())
    key = key.strip()
    _check_username_text(key)
    return key


def normalize_roles(roles: Iterable[str]) -> list[str]:
    """Validated, de-duplicated, sorted roles; each must match ``[a-z0-9_-]{1,32}``."""
    if isinstance(roles, str):
        raise InvalidInput("Roles must be a list of names, not one string.")
    out: set[str] = set()
    for role in roles:
        if not isinstance(role, str) or ROLE_PATTERN.fullmatch(role) is None:
            raise InvalidInput("Each role must be 1-32 characters of a-z, 0-9, '_' or '-'.")
        out.add(role)
    if len(out) > MAX_ROLES:
        raise InvalidInput(f"A user may have at most {MAX_ROLES} roles.")
    return sorted(out)


def new_user_id() -> str:
    """A fresh, unguessable user id (96 random bits, URL-safe)."""
    return secrets.token_urlsafe(12)


class UserService:
    """Creates, looks up and changes accounts; checks passwords for login."""

    def __init__(
        self,
        store: UserStore,
        hasher: PasswordHasher | None = None,
        clock: Clock = system_clock,
    ) -> None:
        self.store = store
        self.hasher = hasher or PasswordHasher()
        self.clock = clock

    def __repr__(self) -> str:
        return f"UserService(store={type(self.store).__name__}, hasher={self.hasher!r})"

    # --- lookups --------------------------------------------------------------------------

    async def get(self, user_id: str) -> UserRecord:
        """The user with ``user_id``; :class:`NotFound` if there is none."""
        if not isinstance(user_id, str) or not 0 < len(user_id) <= MAX_USER_ID_CHARS:
            raise NotFound("No such user.")
        user = await self.store.get_user(user_id)
        if user is None:
            raise NotFound("No such user.")
        return user

    async def get_by_name(self, username: str) -> UserRecord:
        """The user called ``username`` (normalised); :class:`NotFound` if there is none."""
        user = await self.store.get_user_by_name(normalize_username(username))
        if user is None:
            raise NotFound("No such user.")
        return user

    async def list_users(self, limit: int = 100, offset: int = 0) -> list[UserRecord]:
        """Users ordered by username."""
        if not 1 <= limit <= MAX_LIST_LIMIT:
            raise InvalidInput(f"limit must be between 1 and {MAX_LIST_LIMIT}.")
        if offset < 0:
            raise InvalidInput("offset must not be negative.")
        return await self.store.list_users(limit=limit, offset=offset)

    # --- creation and login ---------------------------------------------------------------

    async def create_user(
        self, username: str, password: str, roles: Iterable[str] = ()
    ) -> UserRecord:
        """Create an account; :class:`UserExists` if the normalised name is taken.

        A common password or one containing the username raises
        :class:`~satchel.errors.WeakPassword`.
        """
        display = display_username(username)
        key = normalize_username(username)
        role_list = normalize_roles(roles)
        check_new_password(password, username=display)
        now = self.clock()
        user = UserRecord(
            id=new_user_id(),
            username=display,
            username_key=key,
            password_hash=await self.hasher.hash(password),
            roles=role_list,
            created_at=now,
            updated_at=now,
        )
        # The store enforces uniqueness atomically; a concurrent duplicate raises UserExists.
        await self.store.create_user(user)
        return user

    async def verify_login(self, username: str, password: str) -> UserRecord:
        """The account for this username and password, or :class:`InvalidLogin`.

        Unknown user, wrong password, disabled account and a stored hash in no supported
        format each cost one verification and raise the same error. A malformed username or
        an over-long password is rejected with :class:`InvalidInput` /
        :class:`PasswordTooLong` before any hashing. After a successful login with a hash
        that is not argon2id at the current parameters, the password is rehashed and saved.
        """
        check_password_length(password)
        key = normalize_username(username)
        user = await self.store.get_user_by_name(key)
        if user is None:
            await self.hasher.verify_dummy(password)
            raise InvalidLogin()
        ok = await self._password_matches(user, password)
        if not ok or user.disabled:
            raise InvalidLogin()
        if self.hasher.needs_rehash(user.password_hash):
            user = await self._upgrade_hash(user, password)
        return user

    async def _password_matches(self, user: UserRecord, password: str) -> bool:
        try:
            identify_hash(user.password_hash)
        except UnsupportedHashFormat as exc:
            # The operator needs to know which account cannot sign in and why; the hash and
            # the password stay out of the log. The dummy keeps the answer's timing uniform.
            logger.warning(
                "user %s cannot sign in: stored password hash refused (%s)", user.id, exc.reason
            )
            await self.hasher.verify_dummy(password)
            return False
        return await self.hasher.verify(user.password_hash, password)

    async def _upgrade_hash(self, user: UserRecord, password: str) -> UserRecord:
        try:
            new_hash = await self.hasher.rehash(password)
            # Re-read so a concurrent change (disable, new password) is not overwritten with
            # the copy read before the slow verification.
            fresh = await self.store.get_user(user.id)
            if fresh is None or fresh.password_hash != user.password_hash:
                return fresh if fresh is not None else user
            fresh.password_hash = new_hash
            fresh.updated_at = self.clock()
            await self.store.update_user(fresh)
            return fresh
        except Exception as exc:
            # The upgrade is opportunistic: the login itself already succeeded, whatever the
            # store (or its driver) raised. The next login tries again.
            logger.warning(
                "could not store upgraded password hash for user %s (%s)",
                user.id,
                type(exc).__name__,
            )
            return user

    # --- changes --------------------------------------------------------------------------

    def _cutoff(self, user: UserRecord) -> float:
        # Never move valid_after backwards, even if the clock does.
        return max(user.valid_after, self.clock())

    async def _save(self, user: UserRecord) -> UserRecord:
        user.updated_at = self.clock()
        await self.store.update_user(user)
        return user

    async def set_disabled(self, user_id: str, disabled: bool) -> UserRecord:
        """Disable or enable an account; disabling invalidates every issued credential."""
        user = await self.get(user_id)
        user.disabled = bool(disabled)
        if disabled:
            user.valid_after = self._cutoff(user)
        return await self._save(user)

    async def set_roles(self, user_id: str, roles: Iterable[str]) -> UserRecord:
        """Replace the user's roles."""
        role_list = normalize_roles(roles)
        user = await self.get(user_id)
        user.roles = role_list
        return await self._save(user)

    async def change_password(self, user_id: str, current: str, new: str) -> UserRecord:
        """Change the password after checking the current one; ends earlier credentials.

        A wrong current password raises :class:`InvalidLogin`; a common password or one
        containing the username raises :class:`~satchel.errors.WeakPassword`.
        """
        check_password_length(current)
        check_new_password(new)
        user = await self.get(user_id)
        check_new_password(new, username=user.username)
        if not await self._password_matches(user, current) or user.disabled:
            raise InvalidLogin("The current password is incorrect.")
        if hmac.compare_digest(current.encode("utf-8"), new.encode("utf-8")):
            raise InvalidInput("The new password must differ from the current one.")
        return await self._set_password(user_id, new, expected_hash=user.password_hash)

    async def reset_password(self, user_id: str, new: str) -> UserRecord:
        """Set a new password without the current one (administrators only)."""
        check_new_password(new)
        user = await self.get(user_id)
        check_new_password(new, username=user.username)
        return await self._set_password(user_id, new)

    async def _set_password(
        self, user_id: str, new: str, *, expected_hash: str | None = None
    ) -> UserRecord:
        new_hash = await self.hasher.hash(new)
        # Re-read after the slow hash so a concurrent change is not overwritten.
        user = await self.get(user_id)
        if expected_hash is not None and user.password_hash != expected_hash:
            raise InvalidLogin("The current password is incorrect.")
        user.password_hash = new_hash
        user.valid_after = self._cutoff(user)
        return await self._save(user)

    async def invalidate_credentials(self, user_id: str) -> UserRecord:
        """Make every credential issued to the user until now invalid (valid_after = now)."""
        user = await self.get(user_id)
        user.valid_after = self._cutoff(user)
        return await self._save(user)

    async def close(self) -> None:
        """Close the store."""
        await self.store.close()
