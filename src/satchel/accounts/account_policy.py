"""What the account flows share besides the service: their policy (modes and lifetimes),
their two errors, the outbox protocol and the wording of lifetimes in mails."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal, Protocol

from satchel.errors import SatchelError

SignupMode = Literal["closed", "invite", "open"]


class SignupClosed(SatchelError):
    """Sign-up is closed here (or needs an invitation)."""

    code = "signup_closed"
    status = 403


class AddressTaken(SatchelError):
    """The address already belongs to another account."""

    code = "email_taken"
    status = 409


class Outbox(Protocol):
    """Where the flows hand mails over; ``send`` queues and never raises."""

    def send(self, kind: str, to: str, context: Mapping[str, Any]) -> bool:
        """Queue mail ``kind`` to ``to``; False when it could not be queued."""
        ...


@dataclass(frozen=True, slots=True)
class AccountPolicy:
    """What the flows allow and for how long; every lifetime is in seconds."""

    public_url: str
    site_name: str = "satchel"
    signup: SignupMode = "closed"
    setup_ttl: float = 3600
    invite_ttl: float = 7 * 86_400
    verify_ttl: float = 86_400
    reset_ttl: float = 1800
    signin_ttl: float = 600
    email_change_ttl: float = 86_400
    reset_ends_sessions: bool = True
    email_change_ends_sessions: bool = True
    admin_role: str = "admin"
    #: Seconds between deletions of expired tokens (0: never; Redis expires them itself).
    purge_interval: float = 3600


def expires_text(seconds: float) -> str:
    """``30 minutes``, ``1 hour``, ``24 hours``, ``7 days`` (for the mails)."""
    minutes = round(seconds / 60)
    if minutes < 60:
        return f"{minutes} minute{'s' if minutes != 1 else ''}"
    hours = round(minutes / 60)
    if hours <= 48:
        return f"{hours} hour{'s' if hours != 1 else ''}"
    days = round(hours / 24)
    return f"{days} days"
