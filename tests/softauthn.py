"""A software WebAuthn authenticator for API tests: P-256 keys, ``none`` attestation, and
every field under the test's control (origin, RP ID, counter, flags), so attacks can be
forged exactly. The browser tests use Chromium's virtual authenticator instead."""

from __future__ import annotations

import hashlib
import json
import secrets
import struct
from dataclasses import dataclass, field
from typing import Any

import cbor2
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec

from satchel.jose.b64 import decode as b64d
from satchel.jose.b64 import encode as b64e

UP, UV, AT, BE, BS = 0x01, 0x04, 0x40, 0x08, 0x10


@dataclass
class Credential:
    credential_id: bytes
    key: ec.EllipticCurvePrivateKey
    rp_id: str
    user_handle: bytes
    counter: int = 0


@dataclass
class SoftAuthenticator:
    """Makes credentials and assertions; ``counter_step`` 0 mimics a synced passkey."""

    origin: str
    counter_step: int = 1
    synced: bool = False
    credentials: list[Credential] = field(default_factory=list)

    def _flags(self, extra: int = 0) -> int:
        flags = UP | UV | extra
        if self.synced:
            flags |= BE | BS
        return flags

    def create(
        self, options: dict[str, Any], *, origin: str | None = None, rp_id: str | None = None
    ) -> dict[str, Any]:
        rp = rp_id or options["rp"]["id"]
        key = ec.generate_private_key(ec.SECP256R1())
        numbers = key.public_key().public_numbers()
        cose = cbor2.dumps(
            {
                1: 2,
                3: -7,
                -1: 1,
                -2: numbers.x.to_bytes(32, "big"),
                -3: numbers.y.to_bytes(32, "big"),
            }
        )
        cid = secrets.token_bytes(16)
        cred = Credential(cid, key, rp, b64d(options["user"]["id"]))
        auth_data = (
            hashlib.sha256(rp.encode()).digest()
            + bytes([self._flags(AT)])
            + struct.pack(">I", 0)
            + b"\x00" * 16
            + struct.pack(">H", len(cid))
            + cid
            + cose
        )
        client = {
            "type": "webauthn.create",
            "challenge": options["challenge"],
            "origin": origin or self.origin,
        }
        attestation = cbor2.dumps({"fmt": "none", "attStmt": {}, "authData": auth_data})
        self.credentials.append(cred)
        return {
            "id": b64e(cid),
            "rawId": b64e(cid),
            "type": "public-key",
            "response": {
                "clientDataJSON": b64e(json.dumps(client).encode()),
                "attestationObject": b64e(attestation),
                "transports": ["internal"],
            },
            "clientExtensionResults": {},
        }

    def get(
        self,
        options: dict[str, Any],
        *,
        credential: Credential | None = None,
        origin: str | None = None,
        rp_id: str | None = None,
        counter: int | None = None,
    ) -> dict[str, Any]:
        cred = credential or self.credentials[-1]
        if counter is None:
            cred.counter += self.counter_step
            counter = cred.counter
        rp = rp_id or options.get("rpId") or cred.rp_id
        auth_data = (
            hashlib.sha256(rp.encode()).digest()
            + bytes([self._flags()])
            + struct.pack(">I", counter)
        )
        client = {
            "type": "webauthn.get",
            "challenge": options["challenge"],
            "origin": origin or self.origin,
        }
        client_json = json.dumps(client).encode()
        signature = cred.key.sign(
            auth_data + hashlib.sha256(client_json).digest(), ec.ECDSA(hashes.SHA256())
        )
        return {
            "id": b64e(cred.credential_id),
            "rawId": b64e(cred.credential_id),
            "type": "public-key",
            "response": {
                "clientDataJSON": b64e(client_json),
                "authenticatorData": b64e(auth_data),
                "signature": b64e(signature),
                "userHandle": b64e(cred.user_handle),
            },
            "clientExtensionResults": {},
        }
