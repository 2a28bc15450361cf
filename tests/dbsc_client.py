"""The browser's half of DBSC (W3C draft dbsc-1), written from the draft for the tests.

:class:`DbscBrowser` holds a session key (ES256 or RS256, made with ``cryptography``), reads
``Secure-Session-Registration`` and ``Secure-Session-Challenge`` from responses, and signs
proofs (``typ: dbsc+jwt``; ``jwk`` only at registration; ``jti`` = the server's challenge)
the way the draft's "DBSC Proof JWT" section describes. The JWS is built here, independently
of satchel's own code.
"""

from __future__ import annotations

import base64
import json
import re
import time
from dataclasses import dataclass, field
from typing import Any

import httpx
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature

REGISTRATION_RE = re.compile(
    r'^\((?P<algs>[A-Z0-9 ]+)\);path="(?P<path>[^"]+)";challenge="(?P<challenge>[^"]+)"$'
)
CHALLENGE_RE = re.compile(r'^"(?P<challenge>[^"]+)";id="(?P<id>[^"]+)"$')


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _int_bytes(value: int) -> bytes:
    return value.to_bytes((value.bit_length() + 7) // 8, "big")


@dataclass
class SessionKey:
    """A session key pair of the browser."""

    alg: str = "ES256"
    private: Any = None

    def __post_init__(self) -> None:
        if self.private is None:
            if self.alg == "ES256":
                self.private = ec.generate_private_key(ec.SECP256R1())
            else:
                self.private = rsa.generate_private_key(public_exponent=65537, key_size=2048)

    def jwk(self) -> dict[str, str]:
        numbers = self.private.public_key().public_numbers()
        if self.alg == "ES256":
            return {
                "kty": "EC",
                "crv": "P-256",
                "x": b64url(numbers.x.to_bytes(32, "big")),
                "y": b64url(numbers.y.to_bytes(32, "big")),
            }
        return {
            "kty": "RSA",
            "n": b64url(_int_bytes(numbers.n)),
            "e": b64url(_int_bytes(numbers.e)),
        }

    def sign(self, data: bytes) -> bytes:
        if self.alg == "ES256":
            r, s = decode_dss_signature(self.private.sign(data, ec.ECDSA(hashes.SHA256())))
            return r.to_bytes(32, "big") + s.to_bytes(32, "big")
        signature: bytes = self.private.sign(data, padding.PKCS1v15(), hashes.SHA256())
        return signature


def jws(header: dict[str, Any], payload: dict[str, Any], key: SessionKey) -> str:
    """A compact JWS of ``header`` and ``payload`` signed with ``key``."""
    head = b64url(json.dumps(header, separators=(",", ":")).encode())
    body = b64url(json.dumps(payload, separators=(",", ":")).encode())
    signing_input = f"{head}.{body}".encode("ascii")
    return f"{head}.{body}.{b64url(key.sign(signing_input))}"


def registration_of(response: httpx.Response) -> dict[str, Any]:
    """The one ``Secure-Session-Registration`` of a response, parsed."""
    values = response.headers.get_list("secure-session-registration")
    assert len(values) == 1, values
    match = REGISTRATION_RE.match(values[0])
    assert match, values[0]
    return {
        "algorithms": match["algs"].split(),
        "path": match["path"],
        "challenge": match["challenge"],
    }


def challenge_of(response: httpx.Response) -> tuple[str, str]:
    """(challenge, session id) of a response's ``Secure-Session-Challenge``."""
    match = CHALLENGE_RE.match(response.headers["secure-session-challenge"])
    assert match, response.headers["secure-session-challenge"]
    return match["challenge"], match["id"]


@dataclass
class DbscBrowser:
    """One browser's DBSC session over ``client`` (its cookie jar is the browser's)."""

    client: httpx.AsyncClient
    key: SessionKey = field(default_factory=SessionKey)
    session_id: str | None = None
    refresh_url: str | None = None
    instructions: dict[str, Any] | None = None

    def proof(
        self, challenge: str, *, registration: bool, key: SessionKey | None = None, **extra: Any
    ) -> str:
        signer = key or self.key
        header: dict[str, Any] = {"alg": signer.alg, "typ": "dbsc+jwt"}
        if registration:
            header["jwk"] = signer.jwk()
        header.update(extra.pop("header", {}))
        payload = {"jti": challenge, "iat": int(time.time()), **extra}
        return jws(header, payload, signer)

    async def register(self, signed_in: httpx.Response, **proof: Any) -> httpx.Response:
        """Answer the sign-in's registration header as the draft's browser does."""
        offer = registration_of(signed_in)
        token = self.proof(offer["challenge"], registration=True, **proof)
        response = await self.client.post(
            offer["path"],
            headers={"secure-session-response": f'"{token}"', "accept": "application/json"},
        )
        if response.status_code == 200:
            self.instructions = response.json()
            self.session_id = self.instructions["session_identifier"]
            self.refresh_url = self.instructions["refresh_url"]
        return response

    async def refresh_request(self, proof: str | None = None) -> httpx.Response:
        assert self.refresh_url is not None and self.session_id is not None
        headers = {"sec-secure-session-id": f'"{self.session_id}"'}
        if proof is not None:
            headers["secure-session-response"] = f'"{proof}"'
        return await self.client.post(self.refresh_url, headers=headers)

    async def refresh(self, key: SessionKey | None = None) -> httpx.Response:
        """The draft's refresh: ask, get 403 and a challenge, answer it with a proof."""
        first = await self.refresh_request()
        assert first.status_code == 403, first.text
        challenge, session_id = challenge_of(first)
        assert session_id == self.session_id
        return await self.refresh_request(self.proof(challenge, registration=False, key=key))
