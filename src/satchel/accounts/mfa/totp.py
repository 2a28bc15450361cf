"""TOTP (RFC 6238, through ``pyotp``): secrets, codes, the QR code, and the secret at rest.

30-second steps, 6 digits, SHA-1 (what every authenticator app reads from an ``otpauth://``
URI), and one step of clock drift either way. :func:`matching_step` tells *which* step a
code belongs to, so the caller can refuse a step it has already accepted (a replayed code).

The secret is stored encrypted with AES-256-GCM under a key of the key store
(:class:`SecretBox`), bound to the account id, so a copy of the factor table alone gives no
secret. ``pyotp`` and ``segno`` (the QR code, as SVG) come with ``satchel[mfa]`` and are
imported only when a TOTP is set up or checked.
"""

from __future__ import annotations

import hmac
import importlib
import os
import re
from typing import Any, Final

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from satchel.errors import ConfigurationError, CorruptRecord
from satchel.jose import b64

PERIOD: Final = 30
DIGITS: Final = 6
#: Steps of clock drift accepted either side of the current one.
WINDOW: Final = 1
#: Name of the key-store secret that encrypts TOTP secrets.
KEY_NAME: Final = "mfa-totp-key"

_CODE_RE = re.compile(r"[0-9]{6}")
_NONCE = 12


def _module(name: str) -> Any:
    try:
        return importlib.import_module(name)
    except ImportError:
        raise ConfigurationError(
            "Second factors need an optional dependency: pip install 'satchel[mfa]'."
        ) from None


def new_secret() -> str:
    """A fresh 160-bit secret, base32 (RFC 4226 recommends at least 128 bits)."""
    secret: str = _module("pyotp").random_base32(length=32)
    return secret


def normalize_code(code: object) -> str | None:
    """``code`` without spaces, if it is six digits; None for anything else."""
    if not isinstance(code, str) or len(code) > 32:
        return None
    text = code.replace(" ", "").replace("-", "")
    return text if _CODE_RE.fullmatch(text) else None


def code_at(secret: str, when: float) -> str:
    """The code of ``secret`` at ``when`` (tests and the setup page use it)."""
    code: str = _module("pyotp").TOTP(secret, digits=DIGITS, interval=PERIOD).at(when)
    return code


def matching_step(secret: str, code: str, now: float) -> int | None:
    """The time step (``now // 30`` give or take one) whose code is ``code``, or None.

    Every candidate is compared in constant time, and all of them are compared, so the
    answer's timing does not say which step matched.
    """
    normal = normalize_code(code)
    if normal is None:
        return None
    totp = _module("pyotp").TOTP(secret, digits=DIGITS, interval=PERIOD)
    current = int(totp.timecode(now))
    found: int | None = None
    for offset in range(-WINDOW, WINDOW + 1):
        candidate = str(totp.generate_otp(current + offset))
        if hmac.compare_digest(candidate.encode(), normal.encode()) and found is None:
            found = current + offset
    return found


def provisioning_uri(secret: str, account: str, issuer: str) -> str:
    """The ``otpauth://totp/...`` URI an authenticator app reads."""
    totp = _module("pyotp").TOTP(secret, digits=DIGITS, interval=PERIOD)
    uri: str = totp.provisioning_uri(name=account, issuer_name=issuer)
    return uri


def qr_svg(uri: str) -> str:
    """``uri`` as an inline SVG QR code (no XML declaration, scalable, dark on light)."""
    qr = _module("segno").make(uri, error="m")
    svg: str = qr.svg_inline(scale=4, dark="#111", light="#fff", border=2, omitsize=True)
    return svg


class SecretBox:
    """Encrypts TOTP secrets for storage: AES-256-GCM, the account id as associated data."""

    def __init__(self, key: bytes) -> None:
        if len(key) != 32:
            raise ConfigurationError("The TOTP secret key must be 32 bytes.")
        self._aead = AESGCM(key)

    def __repr__(self) -> str:
        return "SecretBox()"

    def seal(self, secret: str, user_id: str) -> str:
        """``secret`` encrypted for the account ``user_id``."""
        nonce = os.urandom(_NONCE)
        sealed = self._aead.encrypt(nonce, secret.encode("ascii"), user_id.encode("utf-8"))
        return b64.encode(nonce + sealed)

    def open(self, sealed: str, user_id: str) -> str:
        """The secret of :meth:`seal`; :class:`CorruptRecord` when it does not decrypt."""
        try:
            raw = b64.decode(sealed)
            plain = self._aead.decrypt(raw[:_NONCE], raw[_NONCE:], user_id.encode("utf-8"))
            return plain.decode("ascii")
        except (ValueError, InvalidTag, UnicodeDecodeError) as exc:
            raise CorruptRecord("TOTP secret does not decrypt") from exc
