"""An account's second factors as one record: TOTP, recovery codes and passkeys.

One document per account, stored as JSON and replaced with a compare-and-set on its
``version`` (:mod:`satchel.accounts.mfa.store`), so every change that must be atomic — a
TOTP step used once, a recovery code used once, a passkey's sign count — is a read, a pure
change here and a conditional write. Pure: no I/O.

What is kept, and how:

* TOTP: the secret encrypted (AES-256-GCM, :mod:`satchel.accounts.mfa.totp`), when it was
  confirmed, and the last time step accepted (a code of that step or an earlier one is a
  replay). A setup not yet confirmed is ``pending_totp``, apart from the active one.
* Recovery codes: only their keyed hashes (:mod:`satchel.accounts.mfa.recovery`).
* Passkeys: the credential id, the COSE public key, the sign count, a name, the device type
  and backup flag the authenticator reported, when it was added and last used, and
  ``flagged`` once its sign count went backwards (a cloned authenticator).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from satchel.errors import CorruptRecord
from satchel.jose import b64

#: Most passkeys one account may register.
MAX_PASSKEYS = 20
MAX_PASSKEY_NAME = 64


@dataclass(slots=True, repr=False)
class TotpFactor:
    """A TOTP secret (encrypted) and its replay state."""

    secret: str  # base64url of nonce + AES-GCM ciphertext
    created_at: float
    confirmed_at: float | None = None
    last_step: int = -1

    def __repr__(self) -> str:
        return f"TotpFactor(confirmed={self.confirmed_at is not None})"


@dataclass(slots=True, repr=False)
class Passkey:
    """A registered WebAuthn credential."""

    credential_id: bytes
    public_key: bytes
    sign_count: int
    name: str
    created_at: float
    last_used_at: float | None = None
    device_type: str = "single_device"
    backed_up: bool = False
    transports: list[str] = field(default_factory=list)
    flagged: bool = False

    @property
    def id(self) -> str:
        """The credential id as base64url: how routes and pages name the passkey."""
        return b64.encode(self.credential_id)

    @property
    def synced(self) -> bool:
        """True for a multi-device (synced) passkey: a software key in RFC 8176's terms."""
        return self.device_type == "multi_device" or self.backed_up

    def __repr__(self) -> str:
        return f"Passkey(id={self.id[:8]!r}..., name={self.name!r})"


@dataclass(slots=True, repr=False)
class Factors:
    """Everything one account has set up."""

    totp: TotpFactor | None = None
    pending_totp: TotpFactor | None = None
    recovery: list[str] = field(default_factory=list)  # hex keyed hashes
    recovery_created_at: float | None = None
    passkeys: list[Passkey] = field(default_factory=list)

    def passkey(self, credential_id: bytes) -> Passkey | None:
        """The passkey with ``credential_id``, if registered here."""
        for key in self.passkeys:
            if key.credential_id == credential_id:
                return key
        return None

    @property
    def empty(self) -> bool:
        """True when nothing is set up (the record can go)."""
        return not (self.totp or self.pending_totp or self.recovery or self.passkeys)

    def __repr__(self) -> str:
        return (
            f"Factors(totp={self.totp is not None}, recovery={len(self.recovery)}, "
            f"passkeys={len(self.passkeys)})"
        )


def _totp_out(t: TotpFactor) -> dict[str, Any]:
    return {"s": t.secret, "c": t.created_at, "k": t.confirmed_at, "l": t.last_step}


def _totp_in(d: Any) -> TotpFactor | None:
    if d is None:
        return None
    confirmed = d.get("k")
    return TotpFactor(
        secret=str(d["s"]),
        created_at=float(d["c"]),
        confirmed_at=None if confirmed is None else float(confirmed),
        last_step=int(d.get("l", -1)),
    )


def _passkey_out(p: Passkey) -> dict[str, Any]:
    return {
        "id": b64.encode(p.credential_id),
        "pk": b64.encode(p.public_key),
        "n": p.sign_count,
        "name": p.name,
        "c": p.created_at,
        "u": p.last_used_at,
        "dt": p.device_type,
        "bk": p.backed_up,
        "t": list(p.transports),
        "f": p.flagged,
    }


def _passkey_in(d: Any) -> Passkey:
    used = d.get("u")
    return Passkey(
        credential_id=b64.decode(str(d["id"])),
        public_key=b64.decode(str(d["pk"])),
        sign_count=int(d["n"]),
        name=str(d["name"]),
        created_at=float(d["c"]),
        last_used_at=None if used is None else float(used),
        device_type=str(d.get("dt", "single_device")),
        backed_up=bool(d.get("bk", False)),
        transports=[str(t) for t in d.get("t", [])],
        flagged=bool(d.get("f", False)),
    )


def encode(factors: Factors) -> str:
    """The JSON text of ``factors``."""
    out: dict[str, Any] = {"v": 1}
    if factors.totp is not None:
        out["totp"] = _totp_out(factors.totp)
    if factors.pending_totp is not None:
        out["ptotp"] = _totp_out(factors.pending_totp)
    if factors.recovery:
        out["rc"] = list(factors.recovery)
        out["rcc"] = factors.recovery_created_at
    if factors.passkeys:
        out["pk"] = [_passkey_out(p) for p in factors.passkeys]
    return json.dumps(out, separators=(",", ":"), allow_nan=False)


def decode(raw: str | bytes | None) -> Factors:
    """Parse :func:`encode` output (None: nothing set up); :class:`CorruptRecord` otherwise."""
    if raw is None:
        return Factors()
    try:
        d = json.loads(raw)
        if not isinstance(d, dict) or d.get("v") != 1:
            raise ValueError("version")
        created = d.get("rcc")
        return Factors(
            totp=_totp_in(d.get("totp")),
            pending_totp=_totp_in(d.get("ptotp")),
            recovery=[str(h) for h in d.get("rc", [])],
            recovery_created_at=None if created is None else float(created),
            passkeys=[_passkey_in(p) for p in d.get("pk", [])],
        )
    except (ValueError, TypeError, KeyError, AttributeError, RecursionError) as exc:
        raise CorruptRecord("unreadable second-factor record") from exc
