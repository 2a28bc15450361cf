"""What a request may do with its token's DPoP binding, decided without I/O.

RFC 9449 §7: a token bound to a key (``cnf.jkt``) is only accepted under the ``DPoP``
scheme with a proof by that key; presented as ``Bearer`` it is refused, whatever the mode
(a copy of the token alone must be worthless). Under ``SATCHEL_DPOP=required`` unbound
bearer tokens are refused too; an unbound token under the ``DPoP`` scheme is malformed.
"""

from __future__ import annotations

import re
from typing import Final, Literal

from satchel.errors import InvalidCredential

Mode = Literal["off", "allowed", "required"]
MODES: Final = ("off", "allowed", "required")
#: Proof signature algorithms, in the order the challenge lists them.
ALGS: Final = ("ES256", "EdDSA")
_NOT_QUOTABLE = re.compile(r"[^\x20\x21\x23-\x5b\x5d-\x7e]")


def challenge(error: str | None = None, description: str | None = None) -> str:
    """A ``WWW-Authenticate: DPoP`` challenge (RFC 9449 §7.1) listing :data:`ALGS`."""
    parts = []
    if error is not None:
        parts.append(f'error="{error}"')
        if description:
            parts.append(f'error_description="{_NOT_QUOTABLE.sub("", description)[:200]}"')
    parts.append(f'algs="{" ".join(ALGS)}"')
    return "DPoP " + ", ".join(parts)


class DPoPSchemeError(InvalidCredential):
    """The token was presented under the wrong scheme for its binding."""

    def __init__(self, detail: str, reason: str) -> None:
        super().__init__(detail)
        #: A short stable label for audit events and metrics.
        self.reason = reason

    def response_headers(self) -> list[tuple[str, str]]:
        return [("WWW-Authenticate", challenge(self.code, self.detail))]


def bound_elsewhere() -> DPoPSchemeError:
    """The refusal of a DPoP-bound token in a cookie (any carrier but ``Authorization``)."""
    return DPoPSchemeError(
        "This access token is bound to a DPoP key: send it as Authorization: DPoP.",
        "bound_as_cookie",
    )


def require_unbound(jkt: str | None) -> None:
    """Raise :func:`bound_elsewhere` for a token bound to ``jkt`` where no proof is checked."""
    if jkt is not None:
        raise bound_elsewhere()


def cookie_refusal(jkt: str | None) -> DPoPSchemeError | None:
    """:func:`bound_elsewhere` for a token bound to ``jkt``; None for an unbound one."""
    return None if jkt is None else bound_elsewhere()


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
