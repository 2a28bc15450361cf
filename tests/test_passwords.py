"""argon2id hashing: parameters, limits before hashing, byte-exact verification, dummy hash."""

from __future__ import annotations

import asyncio
import re

import argon2
import pytest

from satchel.accounts.passwords import (
    MAX_PASSWORD_BYTES,
    PasswordHasher,
    check_new_password,
    check_password_length,
)
from satchel.errors import ConfigurationError, InvalidInput, PasswordTooLong

EMOJI_PASSPHRASE = "  correct horse 🐎 battery staple 🔋 — naïve café ✓ ok  "


def argon_params(encoded: str) -> dict[str, int | str]:
    match = re.fullmatch(
        r"\$(argon2(?:id|i|d))\$v=(\d+)\$m=(\d+),t=(\d+),p=(\d+)\$[A-Za-z0-9+/]+\$[A-Za-z0-9+/]+",
        encoded,
    )
    assert match is not None, "not an argon2 PHC string"
    return {
        "type": match[1],
        "v": int(match[2]),
        "m": int(match[3]),
        "t": int(match[4]),
        "p": int(match[5]),
    }


@pytest.fixture(scope="module")
def real_hasher() -> PasswordHasher:
    return PasswordHasher()


@pytest.fixture
def fast() -> PasswordHasher:
    return PasswordHasher.insecure_fast_for_tests()


async def test_P04_default_hash_is_argon2id_at_owasp_parameters(
    real_hasher: PasswordHasher,
) -> None:
    params = argon_params(await real_hasher.hash("a perfectly fine password"))
    assert params["type"] == "argon2id"
    assert params["v"] == 19
    assert int(params["m"]) >= 19456
    assert int(params["t"]) >= 2
    assert params["p"] == 1


async def test_hash_salted_and_verifies(fast: PasswordHasher) -> None:
    first = await fast.hash("password-one")
    second = await fast.hash("password-one")
    assert first != second
    assert await fast.verify(first, "password-one")
    assert await fast.verify(second, "password-one")
    assert not await fast.verify(first, "password-two")


def test_weak_parameters_are_a_configuration_error() -> None:
    with pytest.raises(ConfigurationError):
        PasswordHasher(memory_cost=1024)
    with pytest.raises(ConfigurationError):
        PasswordHasher(time_cost=1)
    with pytest.raises(ConfigurationError):
        PasswordHasher(parallelism=0)


def test_P04_needs_rehash_for_other_parameters(
    real_hasher: PasswordHasher, fast: PasswordHasher
) -> None:
    weak = argon2.PasswordHasher(time_cost=1, memory_cost=8, parallelism=1).hash("pw")
    strong = argon2.PasswordHasher(time_cost=2, memory_cost=19456, parallelism=1).hash("pw")
    argon2i = argon2.PasswordHasher(
        time_cost=2, memory_cost=19456, parallelism=1, type=argon2.Type.I
    ).hash("pw")
    assert real_hasher.needs_rehash(weak)
    assert not real_hasher.needs_rehash(strong)
    assert real_hasher.needs_rehash(argon2i)
    assert real_hasher.needs_rehash("not a hash at all")
    assert fast.needs_rehash(strong)


async def test_P03_emoji_passphrase_verified_byte_exact(fast: PasswordHasher) -> None:
    assert len(EMOJI_PASSPHRASE) >= 50
    stored = await fast.hash(EMOJI_PASSPHRASE)
    assert await fast.verify(stored, EMOJI_PASSPHRASE)
    # No stripping and no Unicode normalisation: every variant below is a different password.
    assert not await fast.verify(stored, EMOJI_PASSPHRASE.strip())
    assert not await fast.verify(stored, EMOJI_PASSPHRASE + " ")
    decomposed = EMOJI_PASSPHRASE.replace("ï", "i\u0308").replace("é", "e\u0301")
    assert decomposed != EMOJI_PASSPHRASE
    assert not await fast.verify(stored, decomposed)


async def test_P03_one_megabyte_password_rejected_before_hashing(fast: PasswordHasher) -> None:
    huge = "x" * 1_000_000
    stored = await fast.hash("a normal password")
    calls = fast.calls
    with pytest.raises(PasswordTooLong) as info:
        await fast.hash(huge)
    assert info.value.status == 413
    with pytest.raises(PasswordTooLong):
        await fast.verify(stored, huge)
    with pytest.raises(PasswordTooLong):
        await fast.verify_dummy(huge)
    assert fast.calls == calls, "argon2 must not run for an oversized password"
    assert "x" * 20 not in info.value.detail


def test_P03_limit_is_in_utf8_bytes() -> None:
    assert check_password_length("a" * MAX_PASSWORD_BYTES) == b"a" * MAX_PASSWORD_BYTES
    with pytest.raises(PasswordTooLong):
        check_password_length("a" * (MAX_PASSWORD_BYTES + 1))
    # 300 four-byte characters: within the character count, over the byte limit.
    with pytest.raises(PasswordTooLong):
        check_password_length("🔋" * 300)


def test_new_password_minimum_and_bad_types() -> None:
    with pytest.raises(InvalidInput):
        check_new_password("short7!")
    assert check_new_password("eight ch") == b"eight ch"
    with pytest.raises(InvalidInput):
        check_password_length(None)
    with pytest.raises(InvalidInput):
        check_password_length(b"bytes are not text")
    with pytest.raises(InvalidInput):
        check_password_length("lone surrogate \ud800 here")


async def test_minimum_length_enforced_for_new_hashes_only(fast: PasswordHasher) -> None:
    with pytest.raises(InvalidInput):
        await fast.hash("short")
    # An existing short password can still be upgraded after it verified.
    upgraded = await fast.rehash("short")
    assert await fast.verify(upgraded, "short")


async def test_dummy_hash_computed_once_and_costs_a_verification(fast: PasswordHasher) -> None:
    assert fast._dummy is None
    before = fast.calls
    await fast.verify_dummy("whatever password")
    dummy = fast._dummy
    assert dummy is not None
    assert argon_params(dummy)["m"] == fast.memory_cost
    await asyncio.gather(*(fast.verify_dummy(f"attempt {i}") for i in range(5)))
    assert fast._dummy is dummy
    assert fast.calls == before + 6


async def test_P01_dummy_uses_real_parameters(real_hasher: PasswordHasher) -> None:
    await real_hasher.verify_dummy("anything at all")
    assert real_hasher._dummy is not None
    params = argon_params(real_hasher._dummy)
    assert (params["m"], params["t"], params["p"]) == (19456, 2, 1)


async def test_corrupt_stored_hash_fails_closed(fast: PasswordHasher) -> None:
    assert not await fast.verify("$argon2id$v=19$m=8,t=1,p=1$garbage", "password")
    assert not await fast.verify("", "password")


async def test_hashing_does_not_block_the_event_loop(real_hasher: PasswordHasher) -> None:
    ticks = 0

    async def ticker() -> None:
        nonlocal ticks
        while True:
            ticks += 1
            await asyncio.sleep(0)

    task = asyncio.create_task(ticker())
    try:
        await real_hasher.hash("a perfectly fine password")
    finally:
        task.cancel()
    # A blocking hash would leave the ticker at zero or one iteration.
    assert ticks > 10


async def test_concurrency_is_bounded() -> None:
    hasher = PasswordHasher.insecure_fast_for_tests(max_concurrency=2)
    assert hasher.max_concurrency == 2
    stored = await hasher.hash("password-x")
    results = await asyncio.gather(*(hasher.verify(stored, "password-x") for _ in range(20)))
    assert all(results)
    # The pool never grows past the bound, however many verifications are queued.
    assert len(hasher._pool._threads) <= 2
    hasher.close()


def test_repr_has_parameters_only(fast: PasswordHasher) -> None:
    assert repr(fast).startswith("PasswordHasher(m=8, t=1, p=1")


async def test_verify_accepts_hashes_of_other_systems_and_flags_them_for_rehash(
    fast: PasswordHasher,
) -> None:
    import bcrypt

    legacy = bcrypt.hashpw(b"password-x", bcrypt.gensalt(4)).decode()
    assert await fast.verify(legacy, "password-x")
    assert not await fast.verify(legacy, "password-y")
    assert fast.needs_rehash(legacy)
    assert fast.needs_rehash("argon2" + await fast.hash("password-x"))  # Django's form
    assert not fast.needs_rehash(await fast.hash("password-x"))


async def test_unsupported_hash_is_a_mismatch_logged_without_the_hash(
    fast: PasswordHasher, caplog: pytest.LogCaptureFixture
) -> None:
    stored = "sha1$abcdefgh$0123456789abcdef0123456789abcdef01234567"
    with caplog.at_level("WARNING", logger="satchel.passwords"):
        assert not await fast.verify(stored, "password-x")
    assert "unrecognised hash format" in caplog.text
    assert "0123456789abcdef" not in caplog.text and "password-x" not in caplog.text
