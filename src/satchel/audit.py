"""Audit events: structured records on the ``satchel.audit`` logger and an optional async hook.

Events carry ids, usernames (control characters escaped) and reasons — never a password,
token, session secret, key or cookie value.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

logger = logging.getLogger("satchel.audit")

MAX_FIELD = 200


def safe_text(value: object, limit: int = MAX_FIELD) -> str:
    """Printable, bounded text for logs: control characters escaped, long values cut."""
    text = str(value)
    if len(text) > limit:
        text = text[:limit] + f"...({len(text)} chars)"
    return text.encode("unicode_escape").decode("ascii") if not text.isprintable() else text


@dataclass(frozen=True, slots=True)
class AuditEvent:
    """One security-relevant fact."""

    name: str  # login.success, login.failure, logout, refresh, revoke, theft, throttled, ...
    user_id: str | None = None
    username: str | None = None
    actor: str | None = None  # who did it, when not the user themself
    session: str | None = None  # public session handle
    ip: str | None = None
    reason: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    def fields(self) -> dict[str, Any]:
        """Bounded, escaped fields for a log record."""
        out: dict[str, Any] = {"event": self.name}
        for key in ("user_id", "username", "actor", "session", "ip", "reason"):
            value = getattr(self, key)
            if value is not None:
                out[key] = safe_text(value)
        for key, value in self.extra.items():
            out[key] = safe_text(value)
        return out


AuditHook = Callable[[AuditEvent], Awaitable[None]]


class AuditLog:
    """Emits :class:`AuditEvent` to ``logging`` and to an optional async hook."""

    def __init__(self, hook: AuditHook | None = None) -> None:
        self.hook = hook

    async def emit(self, event: AuditEvent) -> None:
        """Record ``event``; a failing hook is logged, never raised to the request."""
        data = event.fields()
        logger.info(
            "%s %s",
            event.name,
            " ".join(f"{k}={v}" for k, v in data.items() if k != "event"),
            extra={"satchel_event": data},
        )
        if self.hook is not None:
            try:
                await self.hook(event)
            except Exception:  # the hook is user code; auditing must not break login
                logger.exception("audit hook failed for %s", event.name)
