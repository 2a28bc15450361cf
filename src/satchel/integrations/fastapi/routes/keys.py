"""``/.well-known/jwks.json`` (the public verification keys) and ``/healthz``."""

from __future__ import annotations

import asyncio
from typing import Any, Final

from fastapi import APIRouter, Request, Response

from satchel.auth import Auth
from satchel.errors import ConfigurationError, StoreUnavailable
from satchel.integrations.fastapi.deps import get_auth
from satchel.integrations.fastapi.openapi import error_responses
from satchel.keys.manager import jwks_cache_control

HEALTH_TIMEOUT: Final = 2.0

router = APIRouter()


@router.get("/.well-known/jwks.json", summary="Public verification keys (JWK Set)")
async def jwks(request: Request, response: Response) -> dict[str, Any]:
    """The public half of every key that may verify a token; empty without signing keys."""
    auth = get_auth(request)
    keys = auth.keys
    response.headers["Cache-Control"] = jwks_cache_control(keys)
    if keys is None:
        return {"keys": []}
    try:
        keyset = await keys.published()
    except ConfigurationError:  # nothing loaded: this deployment signs nothing
        return {"keys": []}
    return dict(keyset.jwks(auth.clock()))


@router.get(
    "/healthz",
    responses=error_responses(503),
    summary="Liveness and store reachability",
)
async def healthz(request: Request, response: Response) -> dict[str, str]:
    """``{"status": "ok"}`` when the stores answer a trivial read in time."""
    auth = get_auth(request)
    response.headers["Cache-Control"] = "no-store"
    try:
        async with asyncio.timeout(HEALTH_TIMEOUT):
            await probe_stores(auth)
    except TimeoutError:
        raise StoreUnavailable("The store did not answer in time.") from None
    return {"status": "ok"}


async def probe_stores(auth: Auth) -> None:
    """One cheap read per distinct backend (a lookup of a name that cannot exist)."""
    await auth.probe()
