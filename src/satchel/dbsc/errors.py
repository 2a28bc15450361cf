"""The errors of the DBSC endpoints and of a bound session's request without its cookie."""

from __future__ import annotations

from satchel.errors import AuthenticationError, PermissionDenied, SatchelError
from satchel.transports.base import HeaderPairs


class DeviceBindingRequired(AuthenticationError):
    """The session is bound to a device key and the request lacks a valid bound cookie."""

    code = "device_binding_required"


class ProofRequired(PermissionDenied):
    """The refresh needs a proof of possession of the session key: sign this challenge.

    Answered with 403 and ``Secure-Session-Challenge``, which a DBSC browser answers by
    retrying with a signed proof (the draft's challenge flow).
    """

    code = "dbsc_proof_required"

    def __init__(self, challenge_header: tuple[str, str], detail: str | None = None) -> None:
        super().__init__(detail or "Sign the challenge with the session key.")
        self._header = challenge_header

    def response_headers(self) -> HeaderPairs:
        return [self._header]


class InvalidProof(SatchelError):
    """The ``Secure-Session-Response`` proof is malformed, unsigned or signed by another key."""

    code = "invalid_dbsc_proof"
    status = 400


class NotRegistered(SatchelError):
    """The session has no device key to refresh (never registered, or already registered)."""

    code = "dbsc_not_registered"
    status = 400


class WrongKey(InvalidProof):
    """A well-formed refresh proof that the session's registered key did not sign: the
    theft signal of DBSC (someone holds the session cookie but not the device key)."""

    code = "dbsc_wrong_key"
    status = 401
