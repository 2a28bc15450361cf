"""When a second factor is due, which methods finish a login, and when a session is fresh.

Pure functions of the mode (``SATCHEL_MFA``), the account's roles and what it has enrolled;
no I/O.

* ``off`` — no second factor is ever asked for, and none can be set up (passkeys still sign
  in on their own);
* ``optional`` (default) — an account that has a factor must use it; the others sign in with
  their password alone;
* ``required_for_admins`` — as ``optional``, and an account with the ``admin`` role that has
  no factor yet is walked through setting one up before it gets a session;
* ``required`` — the same for every account.

Recovery codes finish a login but do not count as a factor of their own: an account whose
only factor was removed keeps its codes, and they no longer make it ask for one.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Final

ADMIN_ROLE: Final = "admin"

TOTP: Final = "totp"
PASSKEY: Final = "passkey"
RECOVERY_CODE: Final = "recovery_code"


class MfaMode(enum.StrEnum):
    """``SATCHEL_MFA``: when a second factor is required (see the module docstring)."""

    OFF = "off"
    OPTIONAL = "optional"
    REQUIRED_FOR_ADMINS = "required_for_admins"
    REQUIRED = "required"


@dataclass(frozen=True, slots=True)
class Enrolled:
    """What an account has set up."""

    totp: bool = False
    passkeys: int = 0
    recovery_codes: int = 0

    @property
    def has_factor(self) -> bool:
        """True when a second factor (TOTP or a passkey) is set up."""
        return self.totp or self.passkeys > 0


@dataclass(frozen=True, slots=True)
class LoginStep:
    """What follows a correct password: ``done`` (issue the credential), ``challenge`` (a
    second factor, one of ``methods``) or ``enroll`` (set one up first)."""

    kind: str
    methods: tuple[str, ...] = ()


DONE: Final = LoginStep("done")


def must_enroll(mode: MfaMode, roles: frozenset[str] | set[str] | list[str]) -> bool:
    """True when the policy demands a second factor of an account with ``roles``."""
    if mode is MfaMode.REQUIRED:
        return True
    return mode is MfaMode.REQUIRED_FOR_ADMINS and ADMIN_ROLE in roles


def methods_of(enrolled: Enrolled) -> tuple[str, ...]:
    """The methods that can finish a login of an account with ``enrolled``, best first."""
    out: list[str] = []
    if enrolled.passkeys:
        out.append(PASSKEY)
    if enrolled.totp:
        out.append(TOTP)
    if enrolled.recovery_codes and enrolled.has_factor:
        out.append(RECOVERY_CODE)
    return tuple(out)


def login_step(
    mode: MfaMode, roles: frozenset[str] | set[str] | list[str], enrolled: Enrolled
) -> LoginStep:
    """What a correct password of an account with ``roles`` and ``enrolled`` leads to."""
    if mode is MfaMode.OFF:
        return DONE
    if enrolled.has_factor:
        return LoginStep("challenge", methods_of(enrolled))
    if must_enroll(mode, roles):
        return LoginStep("enroll", (TOTP, PASSKEY))
    return DONE


def is_fresh(auth_time: float, now: float, max_age: float) -> bool:
    """True when an authentication at ``auth_time`` is at most ``max_age`` seconds old.

    A time in the future (a clock step back) counts as fresh only up to one second ahead.
    """
    return auth_time - 1 <= now and now - auth_time <= max_age
