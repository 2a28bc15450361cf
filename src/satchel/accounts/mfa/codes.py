"""TOTP and recovery codes of accounts: set up, confirm, check once, regenerate, remove.

Each operation is one compare-and-set on the account's factor document
(:class:`~satchel.accounts.mfa.documents.FactorDocuments`):

* a TOTP is set up *pending* and becomes active only once a code from the app is confirmed,
  so a mistyped scan never locks anyone out; a pending setup expires after
  :data:`PENDING_TTL`;
* a TOTP code is accepted only for a time step later than the last one accepted: the same
  code, or an older one, is refused the second time (replay), even by a racing request;
* a recovery code is removed as it is used.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

from satchel.accounts.mfa import recovery, totp
from satchel.accounts.mfa.documents import FactorDocuments
from satchel.accounts.mfa.errors import FactorConflict, InvalidCode
from satchel.accounts.mfa.factors import Factors, TotpFactor
from satchel.clock import Clock

#: Seconds a TOTP setup waits for its confirming code.
PENDING_TTL: Final = 900.0


@dataclass(frozen=True, slots=True, repr=False)
class TotpSetup:
    """What the user needs to add the TOTP to an app: the secret, its URI, the QR code."""

    secret: str
    uri: str
    qr_svg: str

    def __repr__(self) -> str:
        return "TotpSetup()"


class Codes:
    """The TOTP and recovery codes kept in ``docs``."""

    def __init__(self, docs: FactorDocuments, *, issuer: str, clock: Clock) -> None:
        self.docs = docs
        self.issuer = issuer
        self.clock = clock

    def __repr__(self) -> str:
        return f"Codes(issuer={self.issuer!r})"

    async def _box(self) -> totp.SecretBox:
        return totp.SecretBox(await self.docs.secret(totp.KEY_NAME))

    # --- TOTP -------------------------------------------------------------------------------

    async def start_totp(self, user_id: str, account: str) -> TotpSetup:
        """A new pending TOTP for the account (replacing an unconfirmed one)."""
        box = await self._box()
        secret = totp.new_secret()
        now = self.clock()

        def change(f: Factors) -> tuple[None, bool]:
            if f.totp is not None:
                raise FactorConflict("An authenticator app is already set up; remove it first.")
            f.pending_totp = TotpFactor(secret=box.seal(secret, user_id), created_at=now)
            return None, True

        await self.docs.update(user_id, change)
        uri = totp.provisioning_uri(secret, account, self.issuer)
        return TotpSetup(secret=secret, uri=uri, qr_svg=totp.qr_svg(uri))

    async def confirm_totp(self, user_id: str, code: str) -> list[str] | None:
        """Activate the pending TOTP with a code from the app.

        Returns fresh recovery codes when the account had none (shown once), else None.
        :class:`InvalidCode` for a wrong code, :class:`FactorConflict` without a setup.
        """
        box = await self._box()
        key = await self.docs.secret(recovery.KEY_NAME)
        now = self.clock()
        codes = recovery.new_codes()

        def change(f: Factors) -> tuple[list[str] | None, bool]:
            pending = f.pending_totp
            if pending is None or now - pending.created_at > PENDING_TTL:
                raise FactorConflict("Start the authenticator setup again.")
            step = totp.matching_step(box.open(pending.secret, user_id), code, now)
            if step is None:
                raise InvalidCode()
            f.totp = TotpFactor(pending.secret, pending.created_at, now, step)
            f.pending_totp = None
            if f.recovery:
                return None, True
            f.recovery = [recovery.digest(key, recovery.normalize(c) or "") for c in codes]
            f.recovery_created_at = now
            return codes, True

        return await self.docs.update(user_id, change)

    async def check_totp(self, user_id: str, code: str) -> bool:
        """True once per time step for a right code of the active TOTP."""
        box = await self._box()
        now = self.clock()

        def change(f: Factors) -> tuple[bool, bool]:
            active = f.totp
            if active is None:
                return False, False
            step = totp.matching_step(box.open(active.secret, user_id), code, now)
            if step is None or step <= active.last_step:
                return False, False  # wrong, or already used: a replay
            active.last_step = step
            return True, True

        return await self.docs.update(user_id, change)

    async def remove_totp(self, user_id: str) -> bool:
        """Remove the TOTP (active and pending); False when there was none."""

        def change(f: Factors) -> tuple[bool, bool]:
            had = f.totp is not None or f.pending_totp is not None
            f.totp = f.pending_totp = None
            return had, had

        return await self.docs.update(user_id, change)

    # --- recovery codes ---------------------------------------------------------------------

    async def new_recovery_codes(self, user_id: str) -> list[str]:
        """Replace the account's recovery codes with ten new ones (returned once)."""
        key = await self.docs.secret(recovery.KEY_NAME)
        codes = recovery.new_codes()
        now = self.clock()

        def change(f: Factors) -> tuple[None, bool]:
            f.recovery = [recovery.digest(key, recovery.normalize(c) or "") for c in codes]
            f.recovery_created_at = now
            return None, True

        await self.docs.update(user_id, change)
        return codes

    async def use_recovery_code(self, user_id: str, code: str) -> int | None:
        """Use up a recovery code: how many are left, or None when it is not one of them."""
        key = await self.docs.secret(recovery.KEY_NAME)

        def change(f: Factors) -> tuple[int | None, bool]:
            found = recovery.find(f.recovery, key, code)
            if found is None:
                return None, False
            f.recovery.remove(found)
            return len(f.recovery), True

        return await self.docs.update(user_id, change)
