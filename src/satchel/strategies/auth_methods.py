"""How a user authenticated, and when: ``amr`` (RFC 8176) and a renewed ``auth_time``.

Every identity carries the authentication methods of its session (``Identity.amr``) and the
instant of its latest authentication (``Identity.auth_time``). They travel:

* in the session record's ``data`` (session, hybrid and jwt refresh families): ``"amr"``,
  a sorted list, and ``"at"``, set only once a step-up (:meth:`Strategy.reauthenticated`)
  renewed the authentication — until then ``auth_time`` is the record's ``created_at``;
* in every signed access token, as the ``amr`` and ``auth_time`` claims, so
  :mod:`satchel.verify` in another service sees them too.

``amr`` is the union of the methods used since the sign-in: a password sign-in followed by a
step-up with a one-time code reads ``["mfa", "otp", "pwd"]``. ``mfa`` is added whenever a
knowledge factor (``pwd``) and a possession factor (``otp``, ``hwk``, ``swk``) have both
been used, and by a passkey verified with user verification on its own (possession plus the
PIN or biometric that unlocked it).

Pure: no I/O.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from typing import Any, Final

from satchel.strategies.application_claims import AUTH_TIME_CLAIM, USERNAME_CLAIM

#: Claim and session-data key of the methods.
AMR_CLAIM: Final = "amr"
#: Session-data key of a renewed authentication instant.
AUTH_TIME_KEY: Final = "at"

PWD: Final = "pwd"  # noqa: S105 - the password method of RFC 8176, not a password
OTP: Final = "otp"  # one-time password: TOTP code, recovery code
HWK: Final = "hwk"  # proof of possession of a hardware-bound key (device-bound passkey)
SWK: Final = "swk"  # proof of possession of a software key (synced passkey)
MFA: Final = "mfa"  # multiple factors

#: The values satchel emits (all registered by RFC 8176).
KNOWN_METHODS: Final = frozenset({PWD, OTP, HWK, SWK, MFA})
_POSSESSION: Final = frozenset({OTP, HWK, SWK})
_MAX_METHODS = 16
_MAX_METHOD_CHARS = 32


def combine(*groups: Iterable[str]) -> frozenset[str]:
    """The union of ``groups``, plus ``mfa`` when a password and a possession factor meet."""
    out = frozenset(method for group in groups for method in group)
    if PWD in out and out & _POSSESSION and MFA not in out:
        out |= {MFA}
    return out


def methods_from(value: object) -> frozenset[str]:
    """The methods in a claim or a record; anything malformed reads as none (never raises).

    An unknown value is kept (another issuer's) but bounded in number and length.
    """
    if type(value) is not list or len(value) > _MAX_METHODS:
        return frozenset()
    out = set()
    for item in value:
        if type(item) is not str or not item or len(item) > _MAX_METHOD_CHARS:
            return frozenset()
        out.add(item)
    return frozenset(out)


def as_claim(amr: Iterable[str]) -> list[str]:
    """``amr`` as the sorted JSON list a token or record holds."""
    return sorted(set(amr))


def token_claims(
    app: Mapping[str, Any], username: str, auth_time: float, amr: Iterable[str]
) -> dict[str, Any]:
    """The claims an access token adds to the registered ones: the account's application
    claims, the username, ``auth_time`` and (when known) ``amr``."""
    out = {**app, USERNAME_CLAIM: username, AUTH_TIME_CLAIM: auth_time}
    methods = as_claim(amr)
    if methods:
        out[AMR_CLAIM] = methods
    return out


def record_auth(data: Mapping[str, Any], created_at: float) -> tuple[float, frozenset[str]]:
    """``(auth_time, amr)`` of a session record with ``data``, created at ``created_at``."""
    at = data.get(AUTH_TIME_KEY)
    auth_time = created_at
    # A renewal never predates the session; a corrupt value falls back to the sign-in.
    if isinstance(at, int | float) and not isinstance(at, bool) and math.isfinite(at):
        auth_time = max(float(at), created_at)
    return auth_time, methods_from(data.get(AMR_CLAIM))


def stamped(
    data: Mapping[str, Any], amr: Iterable[str], auth_time: float | None = None
) -> dict[str, Any]:
    """A copy of session ``data`` recording ``amr`` (and a renewed ``auth_time``)."""
    out = dict(data)
    methods = as_claim(amr)
    if methods:
        out[AMR_CLAIM] = methods
    else:
        out.pop(AMR_CLAIM, None)
    if auth_time is not None:
        out[AUTH_TIME_KEY] = float(auth_time)
    return out
