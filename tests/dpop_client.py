"""A DPoP client for tests, made with joserfc (an independent JOSE library): keys and
RFC 9449 proofs, including deliberately broken ones."""

from __future__ import annotations

import base64
import hashlib
import json
import secrets
import warnings
from typing import Any

from joserfc import jws
from joserfc.jwk import ECKey, OctKey, OKPKey


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def ath(token: str) -> str:
    """RFC 9449 §4.2 ``ath`` of an access token."""
    return b64url(hashlib.sha256(token.encode("ascii")).digest())


class DPoPKey:
    """A client key pair (ES256 on P-256, or EdDSA on Ed25519) that signs proofs."""

    def __init__(self, alg: str = "ES256") -> None:
        self.alg = alg
        self.key: ECKey | OKPKey = (
            ECKey.generate_key("P-256") if alg == "ES256" else OKPKey.generate_key("Ed25519")
        )

    @property
    def public_jwk(self) -> dict[str, Any]:
        return dict(self.key.as_dict(private=False))

    @property
    def jkt(self) -> str:
        """RFC 7638 thumbprint, as joserfc computes it."""
        return str(self.key.thumbprint())

    def proof(
        self,
        method: str,
        url: str,
        *,
        now: float,
        access_token: str | None = None,
        nonce: str | None = None,
        jti: str | None = None,
        header: dict[str, Any] | None = None,
        claims: dict[str, Any] | None = None,
    ) -> str:
        """A proof for ``method`` ``url`` at ``now`` (``header``/``claims`` override)."""
        protected: dict[str, Any] = {"typ": "dpop+jwt", "alg": self.alg, "jwk": self.public_jwk}
        protected.update(header or {})
        payload: dict[str, Any] = {
            "jti": jti or secrets.token_urlsafe(16),
            "htm": method,
            "htu": url,
            "iat": int(now),
        }
        if access_token is not None:
            payload["ath"] = ath(access_token)
        if nonce is not None:
            payload["nonce"] = nonce
        payload.update(claims or {})
        with warnings.catch_warnings():  # joserfc flags EdDSA as superseded by RFC 9864
            warnings.simplefilter("ignore")
            return str(
                jws.serialize_compact(
                    protected, json.dumps(payload), self.key, algorithms=[self.alg]
                )
            )


def hs256_proof(jwk: dict[str, Any], method: str, url: str, now: float) -> str:
    """A proof MAC'ed with HS256 (a symmetric key), carrying an asymmetric key's JWK."""
    secret = OctKey.generate_key(256)
    header = {"typ": "dpop+jwt", "alg": "HS256", "jwk": jwk}
    payload = {"jti": secrets.token_urlsafe(16), "htm": method, "htu": url, "iat": int(now)}
    return str(jws.serialize_compact(header, json.dumps(payload), secret, algorithms=["HS256"]))


def none_proof(jwk: dict[str, Any], method: str, url: str, now: float) -> str:
    """An unsigned proof (``alg: none``), written out by hand: no library makes one."""
    header = {"typ": "dpop+jwt", "alg": "none", "jwk": jwk}
    payload = {"jti": secrets.token_urlsafe(16), "htm": method, "htu": url, "iat": int(now)}
    parts = [b64url(json.dumps(part).encode()) for part in (header, payload)]
    return f"{parts[0]}.{parts[1]}."


def wsgi_flow(rig: Any, base: str, password: str) -> None:
    """DPoP through a WSGI integration's rig (Flask, Django): a bound token from its token
    endpoint opens its protected view with a proof, and only so."""
    rig.create_user("alice")
    client = rig.client()
    key = DPoPKey()
    grant = {"grant_type": "password", "username": "alice", "password": password}
    proof = key.proof("POST", f"{base}/auth/token", now=rig.clock())
    issued = client.request("POST", "/auth/token", data=grant, headers={"DPoP": proof})
    assert issued.status == 200, issued.body
    assert issued.json()["token_type"] == "DPoP"
    token = issued.json()["access_token"]
    url = f"{base}/hello"

    def hello(scheme: str, proof: str | None) -> Any:
        headers = {"Authorization": f"{scheme} {token}"}
        if proof is not None:
            headers["DPoP"] = proof
        return client.request("GET", "/hello", headers=headers)

    proof = key.proof("GET", url, now=rig.clock(), access_token=token)
    ok = hello("DPoP", proof)
    assert ok.status == 200 and ok.json() == {"hello": "alice"}, ok.body
    replayed = hello("DPoP", proof)
    assert replayed.status == 401 and replayed.json()["error"] == "invalid_dpop_proof"
    assert 'DPoP error="invalid_dpop_proof"' in (replayed.header("www-authenticate") or "")
    wrong = key.proof("GET", f"{base}/elsewhere", now=rig.clock(), access_token=token)
    assert hello("DPoP", wrong).json()["error"] == "invalid_dpop_proof"
    other = DPoPKey().proof("GET", url, now=rig.clock(), access_token=token)
    assert hello("DPoP", other).json()["error"] == "invalid_dpop_proof"
    assert hello("DPoP", None).json()["error"] == "invalid_dpop_proof"
    bearer = hello("Bearer", key.proof("GET", url, now=rig.clock(), access_token=token))
    assert bearer.status == 401 and bearer.json()["error"] == "invalid_token"
