"""``GET /debug/counters``: what authentication cost in this process, for tests and benchmarks.

Mounted only when ``SATCHEL_EXPOSE_COUNTERS=true``. The numbers reveal traffic volume (not
credentials), which is still nothing to publish on a production server, hence off by default.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request, Response

from satchel.integrations.fastapi import get_auth
from satchel.revocation.remote import BusBase

router = APIRouter(include_in_schema=False)


@router.get("/debug/counters")
async def counters(request: Request, response: Response) -> dict[str, Any]:
    """Strategy counters, plus the bus's own counters and health when it has them."""
    auth = get_auth(request)
    response.headers["Cache-Control"] = "no-store"
    out: dict[str, Any] = {"strategy": auth.strategy.counters.snapshot()}
    bus = auth.bus
    if bus is not None:
        bus_out: dict[str, Any] = {"kind": type(bus).__name__, "healthy": bool(bus.healthy)}
        if isinstance(bus, BusBase):
            bus_out.update(bus.counters.snapshot())
        out["bus"] = bus_out
    return out
