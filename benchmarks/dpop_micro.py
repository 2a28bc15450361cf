"""What DPoP (RFC 9449) adds to a protected request, per configuration of the seed table.

A DPoP-protected request runs, after ``authenticate()``, what the ASGI middleware runs for
a bearer-transport credential (:func:`checked`): for a bound token the proof check of
:func:`satchel.integrations.dpop.check_scope` — the proof's parsing, its ES256 signature,
its claims, and one insert into the replay cache of the sessions backend (SQLite or Redis
here); for a plain bearer token only the test that no proof is due. Each proof is
single-use, so every timed call gets a fresh one, signed beforehand outside the timing; the
difference of the two is the row "DPoP proof check added to a request".
"""

from __future__ import annotations

import json
import secrets
import time
from collections.abc import Awaitable, Callable, Iterator
from typing import Any

from benchmarks.common import Settings, Timing, time_each_async

URL = "http://bench/auth/me"


def _signer() -> tuple[str, Callable[[str], str]]:
    """A client key's thumbprint and a function making a proof for a token."""
    from satchel.jose import b64
    from satchel.jose.jwk import generate_key, thumbprint

    key = generate_key("ES256")
    jwk = {k: v for k, v in (key.public_jwk() or {}).items() if k in ("kty", "crv", "x", "y")}
    header = b64.encode(json.dumps({"typ": "dpop+jwt", "alg": "ES256", "jwk": jwk}).encode())

    def proof(token: str) -> str:
        from satchel.dpop.proof import access_token_hash

        claims = {
            "jti": secrets.token_urlsafe(16),
            "htm": "GET",
            "htu": URL,
            "iat": int(time.time()),
            "ath": access_token_hash(token),
        }
        signing_input = f"{header}.{b64.encode(json.dumps(claims).encode())}"
        return f"{signing_input}.{b64.encode(key.sign(signing_input.encode()))}"

    return thumbprint(jwk), proof


async def checked(auth: Any, identity: Any, token: str, scope: dict[str, Any]) -> None:
    """The DPoP step of ``satchel.integrations.asgi.resolve_scope``, as it runs there."""
    from satchel.integrations.dpop import check_scope, proof_due

    if identity.jkt is not None or proof_due(auth, scope["headers"]):
        await check_scope(auth, identity, token, scope)


def _scope(scheme: bytes, token: str, proof: str | None) -> dict[str, Any]:
    headers = [(b"host", b"bench"), (b"authorization", scheme + b" " + token.encode())]
    if proof is not None:
        headers.append((b"dpop", proof.encode()))
    return {
        "type": "http",
        "method": "GET",
        "scheme": "http",
        "path": "/auth/me",
        "headers": headers,
    }


async def dpop_extra(auth: Any, user: Any, settings: Settings) -> tuple[Timing, Timing] | None:
    """(bearer, DPoP) timings of the per-request binding check; None without DPoP."""
    from satchel.strategies.base import LoginContext

    if getattr(auth, "dpop", None) is None:
        return None
    jkt, make_proof = _signer()
    bound, issued = await auth.strategy.issue(user, LoginContext(dpop_jkt=jkt))
    plain, plain_issued = await auth.strategy.issue(user, LoginContext())
    token, plain_token = issued.access_token, plain_issued.access_token
    number, repeats = (100, 2) if settings.quick else (500, 5)

    def bearer() -> Iterator[Callable[[], Awaitable[None]]]:
        scope = _scope(b"Bearer", plain_token, None)
        while True:
            yield lambda: checked(auth, plain, plain_token, scope)

    # Signed before the clock starts: a client makes its proofs, the server only checks them.
    scopes = [_scope(b"DPoP", token, make_proof(token)) for _ in range(number * repeats)]

    def dpop() -> Iterator[Callable[[], Awaitable[None]]]:
        for scope in scopes:
            yield lambda scope=scope: checked(auth, bound, token, scope)

    return (
        await time_each_async(bearer(), number, repeats),
        await time_each_async(dpop(), number, repeats),
    )
