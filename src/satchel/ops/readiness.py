"""Readiness: does each store answer, and is the revocation channel connected, right now?

Liveness (``/healthz``) reads nothing; readiness (``/readyz``) is what a load balancer asks
before sending traffic: one cheap read per distinct store backend (a lookup of a name that
cannot exist), all at once, each within ``limit``, plus the revocation channel's state
(no I/O: the bus knows whether its subscription is confirmed). Stores are named by their
role and URL, the password masked, so the answer says what is down.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from satchel.stores import redact_url
from satchel.stores.deadline import DeadlineStore

if TYPE_CHECKING:
    from satchel.auth import Auth

PROBE_NAME = "-readyz-"


@dataclass(frozen=True, slots=True)
class Check:
    """One thing readiness looked at."""

    name: str  # "store sessions+users+keys", "revocation channel"
    target: str  # the store URL (password masked) or the channel kind
    ok: bool
    problem: str = ""  # why not, in words (an error class name, "disconnected", ...)

    def describe(self) -> str:
        """``name (target)``, then the problem when there is one."""
        text = f"{self.name} ({self.target})"
        return f"{text}: {self.problem}" if self.problem else text


@dataclass(frozen=True, slots=True)
class Readiness:
    """Every check; ready when all passed."""

    checks: tuple[Check, ...]

    @property
    def ok(self) -> bool:
        return all(check.ok for check in self.checks)

    def body(self) -> dict[str, Any]:
        """The JSON answer: ``{"status": "ready", ...}`` or the ``not_ready`` error."""
        checks = {f"{c.name} ({c.target})": "ok" if c.ok else c.problem for c in self.checks}
        if self.ok:
            return {"status": "ready", "checks": checks}
        down = "; ".join(c.describe() for c in self.checks if not c.ok)
        return {"error": "not_ready", "detail": f"Not ready: {down}.", "checks": checks}


def _backends(auth: Auth) -> list[tuple[str, str, Any]]:
    """``(roles, url, backend)`` per distinct backend of ``auth``."""
    stores = getattr(auth, "stores", None)
    settings = getattr(auth, "settings", None)
    if stores is None:
        return [("users", "user store", auth.users.store)]
    urls = {
        "sessions": getattr(settings, "sessions_store", None) or getattr(settings, "store", ""),
        "users": getattr(settings, "store", ""),
        "keys": getattr(settings, "store", ""),
    }
    out: list[tuple[list[str], str, Any]] = []
    for role in ("sessions", "users", "keys"):
        backend = getattr(stores, role)
        for roles, _url, seen in out:
            if seen is backend:
                roles.append(role)
                break
        else:
            url = redact_url(str(urls[role] or ""))
            if role == "users" and backend is not stores.keys:
                url = type(backend).__name__  # the application's own user store
            out.append(([role], url, backend))
    return [("+".join(roles), url, backend) for roles, url, backend in out]


async def _probe(roles: str, backend: Any, limit: float) -> str:
    """Empty when ``backend`` answered a trivial read in time; else why not."""
    bounded = DeadlineStore(backend, limit)
    try:
        if "users" in roles:
            await bounded.get_user(PROBE_NAME)
        elif "sessions" in roles:
            await bounded.get(PROBE_NAME)
        else:
            await bounded.get_secret(PROBE_NAME)
    except Exception as exc:  # any failure means "not ready"; the class name says which
        return "did not answer in time" if bounded.timeouts else f"failed ({type(exc).__name__})"
    return ""


def _bus_check(auth: Auth) -> Check | None:
    bus = auth.bus
    if bus is None or not bus.covers_all_processes:
        return None  # no channel to wait for (bus=none: caches are off by design)
    kind = str(getattr(bus, "kind", type(bus).__name__))
    healthy = bool(bus.healthy)
    return Check("revocation channel", kind, healthy, "" if healthy else "disconnected")


async def readiness(auth: Auth, limit: float = 1.0) -> Readiness:
    """Probe every store backend of ``auth`` (concurrently) and its revocation channel."""
    backends = _backends(auth)
    problems = await asyncio.gather(
        *(_probe(roles, backend, limit) for roles, _url, backend in backends)
    )
    checks = [
        Check(f"store {roles}", url, not problem, problem)
        for (roles, url, _backend), problem in zip(backends, problems, strict=True)
    ]
    bus = _bus_check(auth)
    if bus is not None:
        checks.append(bus)
    return Readiness(tuple(checks))
