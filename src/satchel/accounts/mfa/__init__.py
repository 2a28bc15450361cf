"""Second factors and step-up: TOTP, recovery codes, passkeys, and fresh-login gates.

- :mod:`.policy` — when a second factor is due (``SATCHEL_MFA``), what finishes a login,
  when a session is fresh (pure);
- :mod:`.totp`, :mod:`.recovery` — the codes themselves (``pyotp``, ``segno``; pure);
- :mod:`.factors` — an account's factors as one record (pure); :mod:`.documents` — reading
  and changing it with a compare-and-set; :mod:`.codes` — TOTP and recovery-code flows;
- :mod:`.pending` — the ``mfa_token`` of a half-finished login (pure);
- :mod:`.passkeys`, :mod:`.passkey_flow` — WebAuthn through ``py_webauthn``;
- :mod:`.service` — :class:`MfaService`, what :class:`~satchel.Auth` calls;
- :mod:`.errors` — ``mfa_required``, ``reauthentication_required`` and the rest.

See ``docs/mfa.md`` for the flows and ``docs/security.md`` ("Second factors") for the decisions.
"""

from __future__ import annotations

from satchel.accounts.mfa.errors import (
    FactorConflict,
    InvalidCode,
    InvalidMfaToken,
    MfaDisabled,
    MfaRequired,
    ReauthenticationRequired,
    step_up_challenge,
)
from satchel.accounts.mfa.policy import Enrolled, MfaMode, is_fresh
from satchel.accounts.mfa.service import MfaConfig, MfaService

__all__ = [
    "Enrolled",
    "FactorConflict",
    "InvalidCode",
    "InvalidMfaToken",
    "MfaConfig",
    "MfaDisabled",
    "MfaMode",
    "MfaRequired",
    "MfaService",
    "ReauthenticationRequired",
    "is_fresh",
    "step_up_challenge",
]
