"""Sign-in with hashes other systems wrote, through the real Auth over a SQLite file.

A bcrypt, a Django PBKDF2 and a Django argon2 user sign in with their old password and
come out with an argon2id hash at the current parameters; wrong passwords and hashes in no
known format get the same generic InvalidLogin, the latter with one log line that names the
user and the problem but never the hash or the password.
"""

from __future__ import annotations

import logging
import sqlite3
from collections.abc import AsyncIterator
from pathlib import Path

import argon2
import bcrypt
import pytest

from satchel.accounts.hash_formats import hash_scheme
from satchel.accounts.passwords import PasswordHasher
from satchel.accounts.users import normalize_username
from satchel.config.build import ConfiguredAuth, build_auth
from satchel.config.settings import Settings
from satchel.errors import InvalidLogin
from satchel.stores.base import UserRecord

PASSWORD = "an old passphrase from elsewhere"
# Django 5.2: PBKDF2PasswordHasher().encode(PASSWORD, "seasalt", iterations=1000).
DJANGO_PBKDF2 = "pbkdf2_sha256$1000$seasalt$/S2t8SMut1So1J/bhQS+Uikoxv+hMyh/GN4qyKBVT3Q="


@pytest.fixture
async def auth(tmp_path: Path) -> AsyncIterator[ConfiguredAuth]:
    settings = Settings(store=f"sqlite:///{tmp_path / 'legacy.db'}", strategy="session")
    instance = await build_auth(settings, hasher=PasswordHasher.insecure_fast_for_tests())
    await instance.start()
    yield instance
    await instance.close()


async def add_legacy_user(auth: ConfiguredAuth, name: str, password_hash: str) -> UserRecord:
    """Store an account the way `satchel users import` does: the foreign hash as it is."""
    user = UserRecord(
        id=f"id-{name}",
        username=name,
        username_key=normalize_username(name),
        password_hash=password_hash,
        roles=["user"],
    )
    await auth.users.store.create_user(user)
    return user


async def stored_hash(auth: ConfiguredAuth, user_id: str) -> str:
    user = await auth.users.store.get_user(user_id)
    assert user is not None
    return user.password_hash


def django_make_password(password: str, algorithm: str) -> str:
    from django.contrib.auth import hashers

    # The hasher classes themselves, which need no Django settings: configuring settings
    # here would fix them for every later test of this process (the Django integration's).
    classes = {
        "pbkdf2_sha256": hashers.PBKDF2PasswordHasher,
        "pbkdf2_sha1": hashers.PBKDF2SHA1PasswordHasher,
        "argon2": hashers.Argon2PasswordHasher,
        "bcrypt_sha256": hashers.BCryptSHA256PasswordHasher,
        "bcrypt": hashers.BCryptPasswordHasher,
    }
    hasher = classes[algorithm]()
    encoded: str = hasher.encode(password, hasher.salt())
    return encoded


def legacy_hash(kind: str) -> str:
    if kind == "bcrypt":
        return bcrypt.hashpw(PASSWORD.encode(), bcrypt.gensalt(4)).decode()
    if kind == "django_pbkdf2_vector":
        return DJANGO_PBKDF2
    if kind == "argon2i":
        return argon2.PasswordHasher(1, 8, 1, type=argon2.Type.I).hash(PASSWORD)
    if kind == "argon2id_other_parameters":
        return argon2.PasswordHasher(2, 16, 1).hash(PASSWORD)
    return django_make_password(PASSWORD, kind)


@pytest.mark.parametrize(
    "kind",
    [
        "bcrypt",
        "django_pbkdf2_vector",
        "pbkdf2_sha256",
        "argon2",
        "bcrypt_sha256",
        "argon2i",
        "argon2id_other_parameters",
    ],
)
async def test_legacy_user_signs_in_and_is_rehashed_to_argon2id(
    auth: ConfiguredAuth, kind: str
) -> None:
    user = await add_legacy_user(auth, "legacy", legacy_hash(kind))
    assert auth.users.hasher.needs_rehash(user.password_hash)

    result = await auth.login("Legacy", PASSWORD)
    assert result.identity.user_id == user.id

    upgraded = await stored_hash(auth, user.id)
    assert hash_scheme(upgraded) == "argon2id"
    assert not auth.users.hasher.needs_rehash(upgraded)
    # The new hash is of the same password, and the old one is gone for good.
    assert (await auth.login("legacy", PASSWORD)).identity.user_id == user.id
    assert await stored_hash(auth, user.id) == upgraded


@pytest.mark.parametrize("kind", ["bcrypt", "django_pbkdf2_vector", "pbkdf2_sha256"])
async def test_wrong_password_against_a_legacy_hash_is_the_generic_refusal(
    auth: ConfiguredAuth, kind: str
) -> None:
    original = legacy_hash(kind)
    user = await add_legacy_user(auth, "legacy", original)
    with pytest.raises(InvalidLogin) as wrong:
        await auth.login("legacy", PASSWORD + "!")
    with pytest.raises(InvalidLogin) as unknown:
        await auth.login("nobody", PASSWORD)
    assert wrong.value.detail == unknown.value.detail == "Invalid username or password."
    assert await stored_hash(auth, user.id) == original


@pytest.mark.parametrize(
    "bad_hash",
    [
        "md5$0cc175b9c0f1b6a831c399e269772661",
        "$2x$10$" + "a" * 53,
        "pbkdf2_sha256$1000$seasalt$AAAA",
        "",
    ],
)
async def test_hash_in_no_known_format_refuses_with_one_log_line_and_no_crash(
    auth: ConfiguredAuth, bad_hash: str, caplog: pytest.LogCaptureFixture
) -> None:
    user = await add_legacy_user(auth, "broken", bad_hash)
    with caplog.at_level(logging.DEBUG), pytest.raises(InvalidLogin) as info:
        await auth.login("broken", PASSWORD)
    assert info.value.detail == "Invalid username or password."
    lines = [r.getMessage() for r in caplog.records if r.name == "satchel.users"]
    assert len(lines) == 1, lines
    assert user.id in lines[0] and "password hash" in lines[0]
    assert PASSWORD not in caplog.text
    if len(bad_hash) > 8:
        assert bad_hash not in caplog.text and bad_hash[-8:] not in caplog.text
    assert await stored_hash(auth, user.id) == bad_hash


async def test_bcrypt_user_with_a_password_over_72_bytes_signs_in(auth: ConfiguredAuth) -> None:
    long = "a passphrase well beyond bcrypt's limit, " * 3  # 126 bytes
    # What the original system stored: bcrypt of the first 72 bytes (bcrypt < 4.1, PHP, ...).
    encoded = bcrypt.hashpw(long.encode()[:72], bcrypt.gensalt(4)).decode()
    user = await add_legacy_user(auth, "long", encoded)
    await auth.login("long", long)
    upgraded = await stored_hash(auth, user.id)
    assert hash_scheme(upgraded) == "argon2id"
    # From now on the whole passphrase counts, not just its first 72 bytes.
    with pytest.raises(InvalidLogin):
        await auth.login("long", long[:72] + "something else entirely")
    await auth.login("long", long)


async def test_failed_save_of_the_new_hash_does_not_fail_the_login(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    # Users in one SQLite file, sessions in another; a second connection holds the users
    # file's write lock, so saving the new hash really fails (after the busy time-out).
    users_db = tmp_path / "users.db"
    settings = Settings(
        store=f"sqlite:///{users_db}",
        sessions_store=f"sqlite:///{tmp_path / 'sessions.db'}",
        strategy="session",
    )
    auth = await build_auth(settings, hasher=PasswordHasher.insecure_fast_for_tests())
    await auth.start()
    try:
        user = await add_legacy_user(auth, "legacy", legacy_hash("bcrypt"))
        blocker = sqlite3.connect(users_db, isolation_level=None)
        try:
            blocker.execute("BEGIN EXCLUSIVE")
            with caplog.at_level(logging.WARNING):
                result = await auth.login("legacy", PASSWORD)
            blocker.execute("ROLLBACK")
        finally:
            blocker.close()
        assert result.identity.user_id == user.id
        warnings = [r.getMessage() for r in caplog.records if r.name == "satchel.users"]
        assert any(user.id in line and "upgraded" in line for line in warnings), warnings
        assert PASSWORD not in caplog.text
        assert hash_scheme(await stored_hash(auth, user.id)) == "bcrypt"
        # The next sign-in, with the store healthy again, does the upgrade.
        await auth.login("legacy", PASSWORD)
        assert hash_scheme(await stored_hash(auth, user.id)) == "argon2id"
    finally:
        await auth.close()


async def test_change_password_accepts_the_legacy_current_password(auth: ConfiguredAuth) -> None:
    user = await add_legacy_user(auth, "legacy", DJANGO_PBKDF2)
    await auth.users.change_password(user.id, PASSWORD, "a brand new passphrase here")
    assert hash_scheme(await stored_hash(auth, user.id)) == "argon2id"
    await auth.login("legacy", "a brand new passphrase here")
