"""JOSE for satchel's own tokens: keys (JWK/JWA), key sets, JWS, JWT claims, base64url.

The names below load on first use, so ``from satchel.jose import b64`` stays cheap and
imports no cryptography. Modules: :mod:`~satchel.jose.b64` (the one base64url codec),
:mod:`~satchel.jose.jwk` (key objects, JWK parsing), :mod:`~satchel.jose.keyset`,
:mod:`~satchel.jose.jws` (strict compact JWS) and :mod:`~satchel.jose.claims` (JWT claims).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from satchel.jose.jwk import (
        ALGORITHMS,
        DEFAULT_ALG,
        Ed25519Key,
        ES256Key,
        HS256Key,
        RS256Key,
        SigningKey,
        generate_key,
        key_from_jwk,
        new_kid,
    )
    from satchel.jose.jws import UnknownKey
    from satchel.jose.keyset import KeySet

_LAZY: dict[str, str] = {
    "ALGORITHMS": "satchel.jose.jwk",
    "DEFAULT_ALG": "satchel.jose.jwk",
    "ES256Key": "satchel.jose.jwk",
    "Ed25519Key": "satchel.jose.jwk",
    "HS256Key": "satchel.jose.jwk",
    "RS256Key": "satchel.jose.jwk",
    "SigningKey": "satchel.jose.jwk",
    "generate_key": "satchel.jose.jwk",
    "key_from_jwk": "satchel.jose.jwk",
    "new_kid": "satchel.jose.jwk",
    "KeySet": "satchel.jose.keyset",
    "UnknownKey": "satchel.jose.jws",
}

__all__ = [
    "ALGORITHMS",
    "DEFAULT_ALG",
    "ES256Key",
    "Ed25519Key",
    "HS256Key",
    "KeySet",
    "RS256Key",
    "SigningKey",
    "UnknownKey",
    "generate_key",
    "key_from_jwk",
    "new_kid",
]


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'satchel.jose' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(__all__)
