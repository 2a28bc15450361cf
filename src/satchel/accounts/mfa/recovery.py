"""Recovery codes: ten single-use codes that finish a login when the second factor is lost.

A code is ten characters from a 31-letter alphabet without look-alikes (``0/o``, ``1/l/i``),
shown as ``xxxxx-xxxxx``: about 49.5 bits each. They are shown once, when made, and only
their keyed hashes are kept (HMAC-SHA-256 under a key of the key store): the codes are
random, not chosen by people, so a slow password hash would add nothing but a keyed hash
keeps a copy of the factor table from being checked offline at all. Input is forgiving:
case, spaces and hyphens do not matter. Pure: no I/O.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from typing import Final

COUNT: Final = 10
LENGTH: Final = 10
ALPHABET: Final = "abcdefghjkmnpqrstuvwxyz23456789"
#: Name of the key-store secret the codes are hashed with.
KEY_NAME: Final = "mfa-recovery-key"


def new_codes(count: int = COUNT) -> list[str]:
    """``count`` fresh codes, formatted for display (``xxxxx-xxxxx``)."""
    out = []
    for _ in range(count):
        raw = "".join(secrets.choice(ALPHABET) for _ in range(LENGTH))
        out.append(f"{raw[:5]}-{raw[5:]}")
    return out


def normalize(code: object) -> str | None:
    """The code as stored (lower case, no separators), or None when it cannot be one."""
    if not isinstance(code, str) or len(code) > 40:
        return None
    text = code.strip().lower().replace("-", "").replace(" ", "")
    if len(text) != LENGTH or any(ch not in ALPHABET for ch in text):
        return None
    return text


def digest(key: bytes, code: str) -> str:
    """The keyed hash of a normalised code, as hex."""
    return hmac.new(key, code.encode("ascii"), hashlib.sha256).hexdigest()


def find(hashes: list[str], key: bytes, code: object) -> str | None:
    """The stored hash ``code`` matches, or None (every hash is compared, in constant time)."""
    normal = normalize(code)
    if normal is None:
        return None
    wanted = digest(key, normal)
    found = None
    for stored in hashes:
        if hmac.compare_digest(stored, wanted):
            found = stored
    return found
