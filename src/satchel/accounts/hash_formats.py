"""Stored password hash formats satchel can verify: its own argon2id and those of other systems.

Accounts moved from another system (``satchel users import``) keep the hash that system
made until their first sign-in, when the password is rehashed to argon2id. Supported:

- argon2id, argon2i and argon2d PHC strings (``$argon2id$v=19$m=...``), any parameters
  within :data:`MAX_ARGON2_MEMORY_KIB` / :data:`MAX_ARGON2_TIME_COST` /
  :data:`MAX_ARGON2_PARALLELISM`, and Django's ``argon2$argon2id$...`` form;
- bcrypt ``$2a$``, ``$2b$`` and ``$2y$`` (cost at most :data:`MAX_BCRYPT_COST`), and
  Django's ``bcrypt$$2b$...`` and ``bcrypt_sha256$$2b$...`` forms;
- Django's ``pbkdf2_sha256$<iterations>$<salt>$<base64>`` and ``pbkdf2_sha1$...``
  (at most :data:`MAX_PBKDF2_ITERATIONS`).

The upper bounds keep one corrupt or hostile imported hash from tying up a hashing thread
for minutes or allocating gigabytes. bcrypt reads at most 72 bytes of the password: longer
passwords are cut to their first 72 UTF-8 bytes, exactly as the systems that made those
hashes did, so users of long passphrases can still sign in (and get an argon2id hash of the
whole password). Parsing and verification are pure computation; callers run
:func:`verify_hash` off the event loop. No error message ever contains the hash.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import re
from typing import Final

import argon2
import bcrypt
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

MAX_ARGON2_MEMORY_KIB: Final = 1024 * 1024  # 1 GiB: libsodium's "sensitive" level
MAX_ARGON2_TIME_COST: Final = 32
MAX_ARGON2_PARALLELISM: Final = 64
#: bcrypt cost is exponential: 12 takes ~0.25 s, 16 about 4 s.
MAX_BCRYPT_COST: Final = 16
MIN_BCRYPT_COST: Final = 4
#: Django 5.2 uses 1 000 000; ten times that is several seconds of one core.
MAX_PBKDF2_ITERATIONS: Final = 10_000_000
#: bcrypt uses at most this many bytes of the password.
BCRYPT_MAX_PASSWORD_BYTES: Final = 72
#: Longest stored hash accepted at all (every supported format is far shorter).
MAX_HASH_CHARS: Final = 512

_ARGON2_TYPES: Final = {
    "$argon2id$": "argon2id",
    "$argon2i$": "argon2i",
    "$argon2d$": "argon2d",
}
# Modular crypt format: $2b$12$ + 22 characters of salt + 31 of hash, in bcrypt's alphabet.
_BCRYPT: Final = re.compile(r"\$(2[aby])\$(\d\d)\$[./A-Za-z0-9]{53}")
_PBKDF2_DIGESTS: Final = {"pbkdf2_sha256": "sha256", "pbkdf2_sha1": "sha1"}
_PBKDF2_SALT: Final = re.compile(r"[!-#%-~]{1,128}")  # printable ASCII except '$'
_ITERATIONS: Final = re.compile(r"[1-9][0-9]{0,15}")

# Verification only: argon2-cffi reads the type and parameters from each hash.
_ARGON2_VERIFIER: Final = argon2.PasswordHasher()


class UnsupportedHashFormat(ValueError):
    """The stored hash is in no format satchel can verify. ``reason`` never quotes the hash."""

    def __init__(self, reason: str) -> None:
        self.reason = reason
        super().__init__(reason)


def _argon2_scheme(phc: str) -> str:
    """The argon2 type of a PHC string, after checking its structure and parameter bounds."""
    scheme = next((name for prefix, name in _ARGON2_TYPES.items() if phc.startswith(prefix)), None)
    if scheme is None:
        raise UnsupportedHashFormat("unknown argon2 variant")
    try:
        params = argon2.extract_parameters(phc)
    except (InvalidHashError, ValueError):
        raise UnsupportedHashFormat(f"malformed {scheme} hash") from None
    if (
        params.memory_cost > MAX_ARGON2_MEMORY_KIB
        or params.time_cost > MAX_ARGON2_TIME_COST
        or params.parallelism > MAX_ARGON2_PARALLELISM
    ):
        raise UnsupportedHashFormat(
            f"{scheme} parameters above the supported bounds (m <= {MAX_ARGON2_MEMORY_KIB} KiB, "
            f"t <= {MAX_ARGON2_TIME_COST}, p <= {MAX_ARGON2_PARALLELISM})"
        )
    return scheme


def _bcrypt_scheme(mcf: str, name: str) -> str:
    match = _BCRYPT.fullmatch(mcf)
    if match is None:
        if mcf.startswith(("$2x$", "$2$")):
            # $2x$ marks hashes made by a crypt_blowfish bug; verifying them as $2b$ would be wrong.
            raise UnsupportedHashFormat("bcrypt variant $2x$ / $2$ is not supported")
        raise UnsupportedHashFormat("malformed bcrypt hash")
    cost = int(match[2])
    if not MIN_BCRYPT_COST <= cost <= MAX_BCRYPT_COST:
        raise UnsupportedHashFormat(
            f"bcrypt cost {cost} outside the supported {MIN_BCRYPT_COST}-{MAX_BCRYPT_COST}"
        )
    return name


def _pbkdf2_parts(password_hash: str) -> tuple[str, int, str, bytes]:
    """(digest name, iterations, salt, expected key) of a Django PBKDF2 hash."""
    parts = password_hash.split("$")
    name = parts[0]
    if len(parts) != 4:
        raise UnsupportedHashFormat(f"malformed Django {name} hash")
    _, iterations, salt, encoded = parts
    if _ITERATIONS.fullmatch(iterations) is None or _PBKDF2_SALT.fullmatch(salt) is None:
        raise UnsupportedHashFormat(f"malformed Django {name} hash")
    if int(iterations) > MAX_PBKDF2_ITERATIONS:
        raise UnsupportedHashFormat(
            f"Django {name} iterations above the supported {MAX_PBKDF2_ITERATIONS}"
        )
    digest = _PBKDF2_DIGESTS[name]
    try:
        expected = base64.b64decode(encoded, validate=True)
    except (binascii.Error, ValueError):
        raise UnsupportedHashFormat(f"malformed Django {name} hash") from None
    if len(expected) != hashlib.new(digest).digest_size:
        raise UnsupportedHashFormat(f"malformed Django {name} hash")
    return digest, int(iterations), salt, expected


def identify_hash(password_hash: object) -> str:
    """The scheme of ``password_hash`` (see :func:`hash_scheme`), or :class:`UnsupportedHashFormat`.

    The whole structure and the parameter bounds are checked, so a hash that passes can be
    given to :func:`verify_hash`.
    """
    if not isinstance(password_hash, str):
        raise UnsupportedHashFormat("the stored hash is not text")
    if not password_hash:
        raise UnsupportedHashFormat("the stored hash is empty")
    if len(password_hash) > MAX_HASH_CHARS or not password_hash.isascii():
        raise UnsupportedHashFormat("unrecognised hash format")
    if password_hash.startswith("!"):
        # Django's set_unusable_password(): the account never had a password to move over.
        raise UnsupportedHashFormat("the stored hash marks an unusable password")
    if password_hash.startswith("$argon2"):
        return _argon2_scheme(password_hash)
    if password_hash.startswith("$2"):
        return _bcrypt_scheme(password_hash, "bcrypt")
    prefix = password_hash.split("$", 1)[0]
    if prefix in _PBKDF2_DIGESTS:
        _pbkdf2_parts(password_hash)
        return f"django_{prefix}"
    if prefix == "argon2":
        return f"django_{_argon2_scheme(password_hash[len(prefix) :])}"
    if prefix in ("bcrypt", "bcrypt_sha256"):
        # Django writes "bcrypt$" + the modular crypt string, whose own "$" doubles the sign.
        return _bcrypt_scheme(password_hash[len(prefix) + 1 :], f"django_{prefix}")
    raise UnsupportedHashFormat("unrecognised hash format")


def hash_scheme(password_hash: object) -> str | None:
    """The scheme of a stored hash, or None when satchel cannot verify it.

    One of ``argon2id``, ``argon2i``, ``argon2d``, ``bcrypt``, ``django_argon2id``,
    ``django_argon2i``, ``django_argon2d``, ``django_bcrypt``, ``django_bcrypt_sha256``,
    ``django_pbkdf2_sha256`` and ``django_pbkdf2_sha1``.
    """
    try:
        return identify_hash(password_hash)
    except UnsupportedHashFormat:
        return None


def _verify_argon2(phc: str, password: bytes) -> bool:
    try:
        return _ARGON2_VERIFIER.verify(phc, password)
    except VerifyMismatchError:
        return False
    except (InvalidHashError, VerificationError, ValueError):
        # The structure was checked; this is a hash argon2 itself refuses (e.g. bad base64).
        raise UnsupportedHashFormat("argon2 refused the stored hash") from None


def _verify_bcrypt(mcf: str, password: bytes) -> bool:
    try:
        return bcrypt.checkpw(password[:BCRYPT_MAX_PASSWORD_BYTES], mcf.encode("ascii"))
    except ValueError:
        raise UnsupportedHashFormat("bcrypt refused the stored hash") from None


def _verify_pbkdf2(password_hash: str, password: bytes) -> bool:
    digest, iterations, salt, expected = _pbkdf2_parts(password_hash)
    derived = hashlib.pbkdf2_hmac(digest, password, salt.encode("ascii"), iterations)
    return hmac.compare_digest(derived, expected)


def verify_hash(password_hash: str, password: bytes) -> bool:
    """True when ``password`` (UTF-8 bytes) matches ``password_hash``, in any supported format.

    Raises :class:`UnsupportedHashFormat` for a hash of no supported format. CPU-bound
    (tens of milliseconds to seconds): run it in a worker thread.
    """
    scheme = identify_hash(password_hash)
    if scheme in ("argon2id", "argon2i", "argon2d"):
        return _verify_argon2(password_hash, password)
    if scheme.startswith("django_argon2"):
        return _verify_argon2(password_hash[len("argon2") :], password)
    if scheme == "bcrypt":
        return _verify_bcrypt(password_hash, password)
    if scheme == "django_bcrypt":
        return _verify_bcrypt(password_hash[len("bcrypt$") :], password)
    if scheme == "django_bcrypt_sha256":
        # Django hashes the password first (hex SHA-256, 64 bytes), avoiding bcrypt's 72-byte cut.
        prehashed = hashlib.sha256(password).hexdigest().encode("ascii")
        return _verify_bcrypt(password_hash[len("bcrypt_sha256$") :], prehashed)
    return _verify_pbkdf2(password_hash, password)
