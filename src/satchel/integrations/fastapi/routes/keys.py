"""``/.well-known/jwks.json`` (the public verification keys) and ``/healthz``."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request, Response

from satchel.errors import ConfigurationError
from satchel.integrations.fastapi.deps import get_auth
from satchel.keys.manager import jwks_cache_control

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


@router.get("/healthz", summary="Liveness: the process answers (no I/O)")
async def healthz(response: Response) -> dict[str, str]:
    """``{"status": "ok"}`` while the process serves requests; it reads no store, so a store
    outage never restarts a healthy process. Readiness (stores and the revocation channel)
    is ``/readyz`` on the reference server, or :func:`satchel.ops.readiness.readiness`."""
    response.headers["Cache-Control"] = "no-store"
    return {"status": "ok"}
