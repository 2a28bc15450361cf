"""The authenticated principal that satchel puts on every request."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True, slots=True, repr=False)
class Identity:
    """Who is making the request, as established by a strategy.

    ``session_id`` is the public handle of the server-side session (or the ``sid`` claim of a
    token); it is not a credential on its own, but it is still kept out of ``repr``.

    ``auth_time`` is the instant of the latest authentication: the sign-in, kept through
    every refresh, or a later step-up (``POST /auth/reauthenticate``). ``amr`` names the
    methods used (RFC 8176: ``pwd``, ``otp``, ``hwk``, ``swk``, ``mfa``; see
    :mod:`satchel.strategies.auth_methods`).
    ``claims`` carries the account's application claims (``UserRecord.claims``, plus
    ``"email"`` when the account has one; rules in
    :mod:`satchel.strategies.application_claims`) in every strategy; for the jwt and hybrid
    strategies it is the whole verified token payload, registered claims included. Treat it
    as read-only: one identity may be shared by the requests that present the same token.
    ``device_key`` is the RFC 7638 thumbprint of the device key a DBSC session is bound to
    (:mod:`satchel.dbsc`): its cookie requests also need the bound cookie. None otherwise.
    """

    user_id: str
    username: str
    roles: frozenset[str]
    strategy: str
    auth_time: float
    expires_at: float
    session_id: str | None = None
    transport: str | None = None
    claims: Mapping[str, Any] = field(default_factory=dict)
    amr: frozenset[str] = frozenset()
    device_key: str | None = None

    @property
    def jkt(self) -> str | None:
        """Thumbprint of the DPoP key the credential is bound to (``cnf.jkt``), or None.

        A ``cnf`` claim that is present but malformed binds to no key at all ("").
        """
        cnf = self.claims.get("cnf")
        if cnf is None:
            return None
        jkt = cnf.get("jkt") if isinstance(cnf, Mapping) else None
        return jkt if isinstance(jkt, str) else ""

    def has_role(self, role: str) -> bool:
        """True when the identity carries ``role``."""
        return role in self.roles

    def with_transport(self, transport: str) -> Identity:
        """A copy naming the transport the credential came in on."""
        if self.transport == transport:
            return self
        return Identity(
            user_id=self.user_id,
            username=self.username,
            roles=self.roles,
            strategy=self.strategy,
            auth_time=self.auth_time,
            expires_at=self.expires_at,
            session_id=self.session_id,
            transport=transport,
            claims=self.claims,
            amr=self.amr,
            device_key=self.device_key,
        )

    def to_public_dict(self) -> dict[str, Any]:
        """A JSON-safe view for API responses (no secrets)."""
        return {
            "user_id": self.user_id,
            "username": self.username,
            "roles": sorted(self.roles),
            "strategy": self.strategy,
            "transport": self.transport,
            "session_id": self.session_id,
            "auth_time": int(self.auth_time),
            "amr": sorted(self.amr),
            "expires_at": int(self.expires_at),
        }

    def __repr__(self) -> str:
        return (
            f"Identity(user_id={self.user_id!r}, username={self.username!r}, "
            f"roles={sorted(self.roles)!r}, strategy={self.strategy!r}, "
            f"transport={self.transport!r})"
        )
