"""``satchel.verify`` with DPoP: a bound token needs a proof by its key, checked against the
request's method and URL, and a proof is single-use (across verifiers sharing Redis too)."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest

from dpop_client import DPoPKey
from satchel.dpop.binding import DPoPSchemeError
from satchel.dpop.proof import DPoPProofError
from satchel.errors import ConfigurationError
from satchel.jose.jwk import generate_key
from satchel.verify import Verifier
from test_verify import AUDIENCE, ISSUER, JWKSServer, mint

URL = "https://api.example.com/orders"


@pytest.fixture
def jwks() -> Iterator[JWKSServer]:
    server = JWKSServer()
    yield server
    server.close()


async def test_a_bound_token_verifies_with_a_proof_of_its_key(jwks: JWKSServer) -> None:
    signer = generate_key("EdDSA")
    jwks.publish(signer)
    verifier = Verifier(jwks.url, issuer=ISSUER, audience=AUDIENCE)
    await verifier.start()
    key, now = DPoPKey(), time.time()
    token = mint(signer, now, cnf={"jkt": key.jkt})
    proof = key.proof("GET", URL, now=now, access_token=token)
    identity = await verifier.verify(token, method="GET", url=URL, proof=proof)
    assert identity.jkt == key.jkt and identity.username == "alice"
    with pytest.raises(DPoPProofError):  # the same proof again
        await verifier.verify(token, method="GET", url=URL, proof=proof)
    with pytest.raises(DPoPSchemeError):  # no proof: the token alone is not enough
        await verifier.verify(token)
    wrong = key.proof("POST", URL, now=now, access_token=token)
    with pytest.raises(DPoPProofError) as err:
        await verifier.verify(token, method="GET", url=URL, proof=wrong)
    assert err.value.reason == "htm"
    other = DPoPKey().proof("GET", URL, now=now, access_token=token)
    with pytest.raises(DPoPProofError) as err:
        await verifier.verify(token, method="GET", url=URL, proof=other)
    assert err.value.reason == "jkt"
    with pytest.raises(ConfigurationError):
        await verifier.verify(token, proof=key.proof("GET", URL, now=now, access_token=token))
    await verifier.close()


async def test_an_unbound_token_is_bearer_only(jwks: JWKSServer) -> None:
    signer = generate_key("ES256")
    jwks.publish(signer)
    verifier = Verifier(jwks.url, issuer=ISSUER, audience=AUDIENCE)
    await verifier.start()
    now = time.time()
    token = mint(signer, now)
    assert (await verifier.verify(token)).jkt is None
    proof = DPoPKey().proof("GET", URL, now=now, access_token=token)
    with pytest.raises(DPoPSchemeError) as err:
        await verifier.verify(token, method="GET", url=URL, proof=proof)
    assert err.value.reason == "unbound_token"
    await verifier.close()


@pytest.mark.redis
async def test_verifiers_sharing_redis_share_the_replay_cache(
    jwks: JWKSServer, redis_url: str, run_id: str
) -> None:
    signer = generate_key("EdDSA")
    jwks.publish(signer)
    prefix = f"satchel_dpopv_{run_id}"
    one, two = (
        Verifier(jwks.url, issuer=ISSUER, audience=AUDIENCE, redis_url=redis_url, prefix=prefix)
        for _ in range(2)
    )
    await one.start()
    await two.start()
    try:
        key = DPoPKey()
        now = time.time() + 1  # issued after the verifiers subscribed
        token = mint(signer, now, cnf={"jkt": key.jkt})
        proof = key.proof("GET", URL, now=now, access_token=token)
        assert (await one.verify(token, method="GET", url=URL, proof=proof)).jkt == key.jkt
        with pytest.raises(DPoPProofError) as err:
            await two.verify(token, method="GET", url=URL, proof=proof)
        assert err.value.reason == "replay"
    finally:
        await one.close()
        await two.close()
