"""Password hashing with argon2id (and verification of the formats other systems wrote).

Hashing runs in a small dedicated thread pool: each hash takes tens of milliseconds of CPU
and 19+ MiB of memory, so it must neither block the event loop nor run unboundedly in
parallel during a login flood. Lengths are checked before any hashing so an oversized
password is rejected for free.

New passwords are also refused when they are one of the common passwords of zxcvbn's
frequency list or contain the username or the service name (ASVS 6.2.4, 6.2.11). Only new
passwords are checked: an existing password keeps working at login.

New hashes are always argon2id; :meth:`PasswordHasher.verify` also accepts the bcrypt,
Django PBKDF2 and other argon2 hashes of :mod:`satchel.accounts.hash_formats`, and
:meth:`PasswordHasher.needs_rehash` is true for each of them.
"""

from __future__ import annotations

import asyncio
import logging
import os
import secrets
import threading
import unicodedata
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from functools import cache
from typing import Final, TypeVar

import argon2
from argon2.exceptions import InvalidHashError

from satchel.accounts.hash_formats import UnsupportedHashFormat, verify_hash
from satchel.errors import ConfigurationError, InvalidInput, PasswordTooLong, WeakPassword

logger = logging.getLogger("satchel.passwords")

#: Longest accepted password, in UTF-8 bytes.
MAX_PASSWORD_BYTES: Final = 1024
#: Shortest accepted *new* password, in characters.
MIN_PASSWORD_CHARS: Final = 8
#: Words a new password must not contain, whatever the case (ASVS 6.2.11).
CONTEXT_WORDS: Final = ("satchel",)
# A username shorter than this is only refused as the whole password: a two- or
# three-letter name turns up by chance inside long passphrases.
_MIN_CONTAINED_USERNAME: Final = 4

# OWASP Password Storage Cheat Sheet minimum for argon2id: m=19 MiB, t=2, p=1.
MIN_MEMORY_COST: Final = 19456
MIN_TIME_COST: Final = 2
DEFAULT_MEMORY_COST: Final = 19456
DEFAULT_TIME_COST: Final = 2
DEFAULT_PARALLELISM: Final = 1

_T = TypeVar("_T")


def check_password_length(password: object) -> bytes:
    """The password as UTF-8 bytes, or a clear error when it is not an acceptable string.

    Raises :class:`PasswordTooLong` above :data:`MAX_PASSWORD_BYTES`. The password is used
    byte-exact: no stripping, no Unicode normalisation.
    """
    if not isinstance(password, str):
        raise InvalidInput("The password must be a string.")
    # Every character is at least one byte, so this bounds the work of encoding a huge input.
    if len(password) > MAX_PASSWORD_BYTES:
        raise PasswordTooLong(f"The password is longer than {MAX_PASSWORD_BYTES} bytes.")
    try:
        raw = password.encode("utf-8")
    except UnicodeEncodeError:
        raise InvalidInput("The password is not valid Unicode text.") from None
    if len(raw) > MAX_PASSWORD_BYTES:
        raise PasswordTooLong(f"The password is longer than {MAX_PASSWORD_BYTES} bytes.")
    return raw


@cache
def common_passwords() -> frozenset[str]:
    """The common passwords of zxcvbn's frequency list (30 000, lower case), loaded once."""
    # Imported here, not at module load: the list costs a few MiB and tens of milliseconds,
    # which only processes that set passwords should pay.
    from zxcvbn.frequency_lists import FREQUENCY_LISTS

    words: list[str] = FREQUENCY_LISTS["passwords"]
    return frozenset(word.casefold() for word in words)


def _fold(text: str) -> str:
    return unicodedata.normalize("NFKC", unicodedata.normalize("NFKC", text).casefold())


def check_new_password(password: object, *, username: str | None = None) -> bytes:
    """Like :func:`check_password_length`, plus the rules for a new password.

    Raises :class:`InvalidInput` below :data:`MIN_PASSWORD_CHARS` and :class:`WeakPassword`
    when the password, ignoring case, is a common password, equals or contains ``username``
    (contains: names of 4 characters or more) or contains a word of :data:`CONTEXT_WORDS`.
    The error never repeats the password.
    """
    raw = check_password_length(password)
    assert isinstance(password, str)  # check_password_length refused everything else
    if len(password) < MIN_PASSWORD_CHARS:
        raise InvalidInput(f"The password must be at least {MIN_PASSWORD_CHARS} characters.")
    folded = _fold(password)
    if folded in common_passwords():
        raise WeakPassword(
            "This password is one of the most common passwords and easy to guess; "
            "choose another, e.g. a phrase of several unrelated words."
        )
    if username:
        name = _fold(username.strip())
        if name and (folded == name or (len(name) >= _MIN_CONTAINED_USERNAME and name in folded)):
            raise WeakPassword("The password must not contain the username.")
    for word in CONTEXT_WORDS:
        if word in folded:
            raise WeakPassword(f"The password must not contain the word {word!r}.")
    return raw


class PasswordHasher:
    """argon2id hashing, verification (of every supported format) and upgrade checks, off
    the event loop.

    The default parameters are the OWASP minimum (m=19456 KiB, t=2, p=1); weaker ones raise
    :class:`ConfigurationError` — tests use :meth:`insecure_fast_for_tests` explicitly.
    """

    def __init__(
        self,
        *,
        time_cost: int = DEFAULT_TIME_COST,
        memory_cost: int = DEFAULT_MEMORY_COST,
        parallelism: int = DEFAULT_PARALLELISM,
        max_concurrency: int | None = None,
    ) -> None:
        if time_cost < MIN_TIME_COST or memory_cost < MIN_MEMORY_COST or parallelism < 1:
            raise ConfigurationError(
                f"argon2id needs memory_cost >= {MIN_MEMORY_COST} KiB, time_cost >= "
                f"{MIN_TIME_COST} and parallelism >= 1."
            )
        self._configure(time_cost, memory_cost, parallelism, max_concurrency)

    @classmethod
    def insecure_fast_for_tests(cls, *, max_concurrency: int | None = None) -> PasswordHasher:
        """A hasher with tiny parameters. Never use outside tests: it offers no protection."""
        hasher = cls.__new__(cls)
        hasher._configure(1, 8, 1, max_concurrency)
        return hasher

    def _configure(
        self, time_cost: int, memory_cost: int, parallelism: int, max_concurrency: int | None
    ) -> None:
        self.time_cost = time_cost
        self.memory_cost = memory_cost
        self.parallelism = parallelism
        self.max_concurrency = max_concurrency or 2 * (os.cpu_count() or 1)
        if self.max_concurrency < 1:
            raise ConfigurationError("max_concurrency must be at least 1.")
        self._argon = argon2.PasswordHasher(
            time_cost=time_cost,
            memory_cost=memory_cost,
            parallelism=parallelism,
            type=argon2.Type.ID,
        )
        # A dedicated, bounded pool rather than asyncio.to_thread + a semaphore: the bound holds
        # across event loops (an asyncio.Semaphore is tied to one loop) and argon2 never starves
        # other users of the default executor. Queued jobs hold only the password bytes.
        self._pool = ThreadPoolExecutor(
            max_workers=self.max_concurrency, thread_name_prefix="satchel-argon2"
        )
        self._dummy: str | None = None
        self._dummy_lock = threading.Lock()
        #: How many argon2 computations this hasher has started (hash or verify).
        self.calls = 0

    def __repr__(self) -> str:
        return (
            f"PasswordHasher(m={self.memory_cost}, t={self.time_cost}, p={self.parallelism}, "
            f"max_concurrency={self.max_concurrency})"
        )

    async def _run(self, fn: Callable[[], _T]) -> _T:
        self.calls += 1
        return await asyncio.get_running_loop().run_in_executor(self._pool, fn)

    async def hash(self, password: str) -> str:
        """Hash a new password (minimum and maximum length enforced before hashing)."""
        raw = check_new_password(password)
        return await self._run(lambda: self._argon.hash(raw))

    async def rehash(self, password: str) -> str:
        """Hash an existing, already verified password with the current parameters.

        Unlike :meth:`hash` this does not enforce the minimum length, so an account created
        under an older policy can still be upgraded on login.
        """
        raw = check_password_length(password)
        return await self._run(lambda: self._argon.hash(raw))

    async def verify(self, password_hash: str, password: str) -> bool:
        """True when ``password`` matches ``password_hash`` byte for byte.

        ``password_hash`` may be in any format of :mod:`satchel.accounts.hash_formats`; one
        in no supported format is a mismatch (logged without the hash), never an error.
        """
        raw = check_password_length(password)
        return await self._run(lambda: self._verify_sync(password_hash, raw))

    async def verify_dummy(self, password: str) -> None:
        """Spend the same work as :meth:`verify` against a fixed hash; the result is ignored.

        Used for unknown users so that the answer costs the same as for a wrong password.
        """
        raw = check_password_length(password)
        await self._run(lambda: self._verify_sync(self._dummy_hash(), raw))

    def needs_rehash(self, password_hash: str) -> bool:
        """True unless the hash is argon2id with exactly this hasher's parameters."""
        try:
            return self._argon.check_needs_rehash(password_hash)
        except (InvalidHashError, ValueError):
            return True

    def close(self) -> None:
        """Stop the worker threads once queued work is done."""
        self._pool.shutdown(wait=False, cancel_futures=True)

    def _verify_sync(self, password_hash: str, raw: bytes) -> bool:
        try:
            return verify_hash(password_hash, raw)
        except UnsupportedHashFormat as exc:
            # A corrupt stored hash must fail the login, not crash it. Never log the hash.
            logger.warning("stored password hash refused (%s); login refused", exc.reason)
            return False

    def _dummy_hash(self) -> str:
        # Computed once, lazily, with this hasher's parameters so it costs what a real one does.
        with self._dummy_lock:
            if self._dummy is None:
                self._dummy = self._argon.hash(secrets.token_urlsafe(32))
            return self._dummy
