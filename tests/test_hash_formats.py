"""Stored hash formats from other systems: recognised, verified, bounded, refused cleanly.

Hashes come from the libraries that write them in those systems (bcrypt, argon2-cffi,
Django's own hashers) or are fixed vectors Django produced, so the tests check interop,
not the module against itself.
"""

from __future__ import annotations

import base64
from typing import Any

import argon2
import bcrypt
import pytest
from argon2.low_level import Type, hash_secret_raw

from satchel.accounts.hash_formats import (
    MAX_ARGON2_MEMORY_KIB,
    MAX_BCRYPT_COST,
    MAX_PBKDF2_ITERATIONS,
    UnsupportedHashFormat,
    hash_scheme,
    identify_hash,
    verify_hash,
)

PASSWORD = "lètmein"
RAW = PASSWORD.encode()
# Django 5.2: PBKDF2PasswordHasher().encode("lètmein", "seasalt", iterations=1000), and the
# SHA-1 hasher likewise; the last is make_password("lètmein", "seasalt", "pbkdf2_sha256").
DJANGO_PBKDF2_SHA256 = "pbkdf2_sha256$1000$seasalt$JgZryXe2Ga8ysg6XbzkLpTdyPQrHqsinbL9BnnhgX4A="
DJANGO_PBKDF2_SHA1 = "pbkdf2_sha1$1000$seasalt$ljleU4wBmTtz/MoG5YTwxpM0d7I="
DJANGO_PBKDF2_DEFAULT = "pbkdf2_sha256$1000000$seasalt$r1uLUxoxpP2Ued/qxvmje7UH9PUJBkRrvf9gGPL7Cps="


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode().rstrip("=")


def bcrypt_hash(password: bytes, prefix: bytes = b"2b") -> str:
    return bcrypt.hashpw(password, bcrypt.gensalt(4, prefix=prefix)).decode()


def argon2_hash(kind: argon2.Type, **params: int) -> str:
    options = {"time_cost": 1, "memory_cost": 8, "parallelism": 1, **params}
    return argon2.PasswordHasher(type=kind, **options).hash(PASSWORD)


@pytest.fixture(scope="module")
def django_hashers() -> Any:
    # Django (dev extra) writes the hashes, so this checks satchel against the real thing.
    # Its hasher classes need no settings; configuring them here would fix Django's settings
    # for every later test of this process (the Django integration's own).
    from django.contrib.auth import hashers

    return hashers


@pytest.mark.parametrize(
    ("encoded", "scheme"),
    [
        (DJANGO_PBKDF2_SHA256, "django_pbkdf2_sha256"),
        (DJANGO_PBKDF2_SHA1, "django_pbkdf2_sha1"),
        (DJANGO_PBKDF2_DEFAULT, "django_pbkdf2_sha256"),
    ],
)
def test_django_pbkdf2_vectors(encoded: str, scheme: str) -> None:
    assert hash_scheme(encoded) == scheme
    assert verify_hash(encoded, RAW)
    assert not verify_hash(encoded, b"letmein")


@pytest.mark.parametrize(
    ("algorithm", "scheme"),
    [
        ("pbkdf2_sha256", "django_pbkdf2_sha256"),
        ("pbkdf2_sha1", "django_pbkdf2_sha1"),
        ("argon2", "django_argon2id"),
        ("bcrypt_sha256", "django_bcrypt_sha256"),
        ("bcrypt", "django_bcrypt"),
    ],
)
def test_hashes_made_by_django_verify(django_hashers: Any, algorithm: str, scheme: str) -> None:
    classes = {
        "pbkdf2_sha256": django_hashers.PBKDF2PasswordHasher,
        "pbkdf2_sha1": django_hashers.PBKDF2SHA1PasswordHasher,
        "argon2": django_hashers.Argon2PasswordHasher,
        "bcrypt_sha256": django_hashers.BCryptSHA256PasswordHasher,
        "bcrypt": django_hashers.BCryptPasswordHasher,
    }
    hasher = classes[algorithm]()
    encoded = hasher.encode(PASSWORD, hasher.salt())
    assert hash_scheme(encoded) == scheme
    assert verify_hash(encoded, RAW)
    assert not verify_hash(encoded, b"lEtmein")


def test_old_django_argon2i_without_version_verifies() -> None:
    # Django 1.10-era form: argon2i, no "v=" field (argon2 version 1.0).
    salt = b"sixteen byte slt"
    digest = hash_secret_raw(RAW, salt, 2, 512, 2, 16, Type.I, version=0x10)
    encoded = f"argon2$argon2i$m=512,t=2,p=2${b64(salt)}${b64(digest)}"
    assert hash_scheme(encoded) == "django_argon2i"
    assert verify_hash(encoded, RAW)
    assert not verify_hash(encoded, b"other")


@pytest.mark.parametrize("prefix", [b"2a", b"2b", b"2y"])
def test_bcrypt_variants(prefix: bytes) -> None:
    encoded = bcrypt_hash(RAW, b"2a" if prefix == b"2y" else prefix)
    # bcrypt writes $2a$/$2b$; PHP's $2y$ is the same algorithm under another name.
    encoded = encoded.replace("$2a$", f"${prefix.decode()}$", 1)
    assert hash_scheme(encoded) == "bcrypt"
    assert verify_hash(encoded, RAW)
    assert not verify_hash(encoded, b"letmein")


def test_bcrypt_cuts_long_passwords_at_72_bytes_like_the_systems_that_made_them() -> None:
    long = "é" * 40  # 80 UTF-8 bytes
    encoded = bcrypt_hash(long.encode()[:72])
    assert verify_hash(encoded, long.encode())
    assert verify_hash(encoded, long.encode()[:72] + b"anything else")
    assert not verify_hash(encoded, long.encode()[:71])


@pytest.mark.parametrize(
    ("kind", "scheme"),
    [(argon2.Type.ID, "argon2id"), (argon2.Type.I, "argon2i"), (argon2.Type.D, "argon2d")],
)
@pytest.mark.parametrize("params", [{}, {"memory_cost": 64, "time_cost": 3, "parallelism": 2}])
def test_argon2_every_variant_and_parameter_set(
    kind: argon2.Type, scheme: str, params: dict[str, int]
) -> None:
    encoded = argon2_hash(kind, **params)
    assert hash_scheme(encoded) == scheme
    assert verify_hash(encoded, RAW)
    assert not verify_hash(encoded, b"letmein")
    assert hash_scheme("argon2" + encoded) == f"django_{scheme}"
    assert verify_hash("argon2" + encoded, RAW)


@pytest.mark.parametrize(
    ("encoded", "reason"),
    [
        ("", "empty"),
        ("plain text password", "unrecognised"),
        ("md5$salt$0123456789abcdef0123456789abcdef", "unrecognised"),
        ("!h8D4sUnusablePasswordMarker", "unusable"),
        ("$2x$10$" + "a" * 53, "$2x$"),
        ("$2b$10$tooshort", "malformed bcrypt"),
        (f"$2b${MAX_BCRYPT_COST + 1}$" + "a" * 53, "cost"),
        ("$2b$03$" + "a" * 53, "cost"),
        ("pbkdf2_sha256$1000$seasalt", "malformed"),
        ("pbkdf2_sha256$0$seasalt$JgZryXe2Ga8ysg6XbzkLpTdyPQrHqsinbL9BnnhgX4A=", "malformed"),
        ("pbkdf2_sha256$1000$seasalt$not base64!", "malformed"),
        ("pbkdf2_sha256$1000$seasalt$" + b64(b"x" * 20) + "=", "malformed"),  # sha1 length
        (f"pbkdf2_sha256${MAX_PBKDF2_ITERATIONS + 1}$s$" + b64(b"x" * 32) + "=", "iterations"),
        ("$argon2id$v=19$m=8,t=1,p=1$garbage", "malformed argon2id"),
        ("$argon2x$v=19$m=8,t=1,p=1$c2FsdHNhbHQ$aGFzaGhhc2g", "variant"),
        (
            f"$argon2id$v=19$m={MAX_ARGON2_MEMORY_KIB * 2},t=1,p=1$c2FsdHNhbHQ$aGFzaGhhc2hoYXNo",
            "bounds",
        ),
        ("argon2$argon2id$nonsense", "malformed"),
        ("x" * 10_000, "unrecognised"),
        ("$2b$10$" + "é" * 53, "unrecognised"),
    ],
)
def test_unsupported_hashes_are_refused_with_a_reason_that_never_quotes_them(
    encoded: str, reason: str
) -> None:
    assert hash_scheme(encoded) is None
    with pytest.raises(UnsupportedHashFormat) as info:
        identify_hash(encoded)
    assert reason in info.value.reason
    tail = encoded.rsplit("$", 1)[-1]
    assert len(tail) < 8 or tail not in info.value.reason
    with pytest.raises(UnsupportedHashFormat):
        verify_hash(encoded, RAW)


@pytest.mark.parametrize("value", [None, 42, b"$2b$10$abc", ["list"]])
def test_non_text_hash_is_unsupported(value: object) -> None:
    assert hash_scheme(value) is None


def test_bcrypt_hash_that_bcrypt_itself_rejects_is_unsupported_not_a_crash() -> None:
    # The right shape, but "z" cannot end a bcrypt salt: bcrypt raises ValueError.
    encoded = "$2b$04$" + "z" * 22 + "." * 31
    assert hash_scheme(encoded) == "bcrypt"
    with pytest.raises(UnsupportedHashFormat, match="bcrypt refused"):
        verify_hash(encoded, RAW)
