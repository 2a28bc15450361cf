"""What a request may do with its token's DPoP binding, decided without I/O.

RFC 9449 §7: a token bound to a key (``cnf.jkt``) is only accepted under the ``DPoP``
scheme with a proof by that key; presented as ``Bearer`` it is refused, whatever the mode
(a copy of the token alone must be worthless). Under ``SATCHEL_DPOP=required`` unbound
bearer tokens are refused too; an unbound token under the ``DPoP`` scheme is malformed.
"""

from __future__ import annotations

from typing import Final, Literal

from satchel.dpop.proof import challenge
from satchel.errors import InvalidCredential

Mode = Literal["off", "allowed", "required"]
MODES: Final = ("off", "allowed", "required")


class DPoPSchemeError(InvalidCredential):
    """The token was presented under the wrong scheme for its binding."""

    def __init__(self, detail: str, reason: str) -> None:
        super().__init__(detail)
        #: A short stable label for audit events and metrics.
        self.reason = reason

    def response_headers(self) -> list[tuple[str, str]]:
        return [("WWW-Authenticate", challenge(self.code, self.detail))]


def scheme_refusal(jkt: str | None, dpop_scheme: bool, mode: Mode) -> DPoPSchemeError | None:
    """Why a token bound to ``jkt`` (None: unbound) cannot be used under its scheme, or None.

    None under the ``DPoP`` scheme means "check the proof"; under ``Bearer``, "accepted".
    """
    if dpop_scheme:
        if mode == "off":
            return DPoPSchemeError("DPoP is not enabled on this server.", "disabled")
        if jkt is None:
            return DPoPSchemeError(
                "This access token is not DPoP-bound: send it as Authorization: Bearer.",
                "unbound_token",
            )
        return None
    if jkt is not None:
        return DPoPSchemeError(
            "This access token is bound to a DPoP key: send it as Authorization: DPoP "
            "with a DPoP proof.",
            "bound_as_bearer",
        )
    if mode == "required":
        return DPoPSchemeError(
            "This server requires DPoP-bound tokens (Authorization: DPoP).", "bearer_refused"
        )
    return None
