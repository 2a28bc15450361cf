"""WebAuthn ceremonies through ``py_webauthn`` (PyPI ``webauthn``): options and verification.

What satchel asks of every passkey, and why:

* **discoverable** (``residentKey: required``): the authenticator keeps the account, so
  "Sign in with a passkey" needs no username (``allowCredentials`` empty);
* **user verification required**: a PIN or biometric unlocks the key, so a passkey alone is
  two factors (``amr`` ``hwk``/``swk`` plus ``mfa``);
* no attestation (``none``): which authenticator is used is the user's choice;
* the RP ID and the accepted origins come from settings, never from the request, and every
  response is checked against them (another site's assertion does not verify here);
* the user handle is the account id (satchel's are random UUIDs, never an address).

Signature, challenge, origin, RP ID hash, user presence and verification are
``py_webauthn``'s checks; the sign counter is compared by the caller *after* the signature
verified (:func:`verify_authentication` passes 0 on purpose), so a forged response can
never flag somebody's passkey. The library is imported only when a ceremony runs.
"""

from __future__ import annotations

import importlib
import json
import secrets
from dataclasses import dataclass
from typing import Any, Final

from satchel.accounts.mfa.errors import InvalidCode
from satchel.errors import ConfigurationError, InvalidInput
from satchel.jose import b64

CHALLENGE_BYTES: Final = 32
#: Most bytes of a ceremony's JSON (an attestation is a few kilobytes).
MAX_CREDENTIAL_JSON: Final = 32 * 1024
_TIMEOUT_MS: Final = 300_000


def _webauthn() -> Any:
    try:
        return importlib.import_module("webauthn")
    except ImportError:
        raise ConfigurationError(
            "Passkeys need an optional dependency: pip install 'satchel[mfa]'."
        ) from None


def _structs() -> Any:
    return importlib.import_module("webauthn.helpers.structs")


def new_challenge() -> bytes:
    """A fresh random challenge (stored server-side, used once)."""
    return secrets.token_bytes(CHALLENGE_BYTES)


@dataclass(frozen=True, slots=True)
class RelyingParty:
    """The site passkeys are bound to: RP ID (a domain), its name, the allowed origins."""

    rp_id: str
    name: str
    origins: tuple[str, ...]


@dataclass(frozen=True, slots=True, repr=False)
class NewCredential:
    """A verified registration, ready to store."""

    credential_id: bytes
    public_key: bytes
    sign_count: int
    device_type: str
    backed_up: bool
    transports: list[str]

    def __repr__(self) -> str:
        return f"NewCredential(device_type={self.device_type!r})"


@dataclass(frozen=True, slots=True)
class Assertion:
    """A verified sign-in: the new sign count and what the authenticator says of itself."""

    sign_count: int
    device_type: str
    backed_up: bool


def _as_dict(options: Any) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(_webauthn().options_to_json(options))
    return data


def registration_options(
    rp: RelyingParty, user_id: str, username: str, challenge: bytes, exclude: list[bytes]
) -> dict[str, Any]:
    """``PublicKeyCredentialCreationOptions`` (JSON) for a new discoverable passkey."""
    handle = user_id.encode("utf-8")
    if not 1 <= len(handle) <= 64:
        raise InvalidInput("This account id cannot be a WebAuthn user handle (1-64 bytes).")
    s = _structs()
    options = _webauthn().generate_registration_options(
        rp_id=rp.rp_id,
        rp_name=rp.name,
        user_id=handle,
        user_name=username,
        user_display_name=username,
        challenge=challenge,
        timeout=_TIMEOUT_MS,
        attestation=s.AttestationConveyancePreference.NONE,
        authenticator_selection=s.AuthenticatorSelectionCriteria(
            resident_key=s.ResidentKeyRequirement.REQUIRED,
            user_verification=s.UserVerificationRequirement.REQUIRED,
        ),
        exclude_credentials=[s.PublicKeyCredentialDescriptor(id=cid) for cid in exclude],
    )
    return _as_dict(options)


def authentication_options(
    rp: RelyingParty, challenge: bytes, allow: list[bytes] | None = None
) -> dict[str, Any]:
    """``PublicKeyCredentialRequestOptions`` (JSON): any passkey of this site (None), or one
    of ``allow`` (the account's, when the passkey is a second factor)."""
    s = _structs()
    options = _webauthn().generate_authentication_options(
        rp_id=rp.rp_id,
        challenge=challenge,
        timeout=_TIMEOUT_MS,
        allow_credentials=[s.PublicKeyCredentialDescriptor(id=cid) for cid in allow or []],
        user_verification=s.UserVerificationRequirement.REQUIRED,
    )
    return _as_dict(options)


def parse_credential(credential: object) -> dict[str, Any]:
    """A ceremony's JSON (``PublicKeyCredential.toJSON()``) as a bounded dict."""
    if isinstance(credential, str):
        if len(credential) > MAX_CREDENTIAL_JSON:
            raise InvalidInput("The passkey response is too large.")
        try:
            credential = json.loads(credential)
        except (ValueError, RecursionError):
            raise InvalidInput("The passkey response is not JSON.") from None
    if not isinstance(credential, dict) or len(json.dumps(credential)) > MAX_CREDENTIAL_JSON:
        raise InvalidInput("The passkey response must be a JSON object.")
    return credential


def challenge_of(credential: dict[str, Any]) -> bytes:
    """The challenge a response answers (from its clientDataJSON), to find it server-side."""
    try:
        client_data = json.loads(b64.decode(str(credential["response"]["clientDataJSON"])))
        return b64.decode(str(client_data["challenge"]))
    except (KeyError, TypeError, ValueError, RecursionError):
        raise InvalidCode("The passkey response is malformed.") from None


def credential_id_of(credential: dict[str, Any]) -> bytes:
    """The credential id a response names (``rawId``)."""
    try:
        return b64.decode(str(credential.get("rawId", credential["id"])))
    except (KeyError, ValueError):
        raise InvalidCode("The passkey response is malformed.") from None


def user_handle_of(credential: dict[str, Any]) -> str | None:
    """The user handle a sign-in response carries (the account id), if any."""
    try:
        raw = credential["response"].get("userHandle")
        return None if not raw else b64.decode(str(raw)).decode("utf-8")
    except (KeyError, TypeError, ValueError, AttributeError, UnicodeDecodeError):
        raise InvalidCode("The passkey response is malformed.") from None


def verify_registration(
    rp: RelyingParty, credential: dict[str, Any], challenge: bytes
) -> NewCredential:
    """Check a ``navigator.credentials.create()`` response; :class:`InvalidCode` if it fails."""
    lib = _webauthn()
    try:
        verified = lib.verify_registration_response(
            credential=credential,
            expected_challenge=challenge,
            expected_rp_id=rp.rp_id,
            expected_origin=list(rp.origins),
            require_user_verification=True,
        )
    except Exception as exc:  # the library's exceptions, and malformed input it chokes on
        raise InvalidCode(f"The passkey could not be registered ({type(exc).__name__}).") from None
    transports = credential.get("response", {}).get("transports") or []
    return NewCredential(
        credential_id=bytes(verified.credential_id),
        public_key=bytes(verified.credential_public_key),
        sign_count=int(verified.sign_count),
        device_type=str(getattr(verified.credential_device_type, "value", "single_device")),
        backed_up=bool(verified.credential_backed_up),
        transports=[str(t) for t in transports if isinstance(t, str)][:8],
    )


def verify_authentication(
    rp: RelyingParty, credential: dict[str, Any], challenge: bytes, public_key: bytes
) -> Assertion:
    """Check a ``navigator.credentials.get()`` response against the stored public key.

    The sign counter is *not* checked here (0 is passed): the caller compares it with the
    stored one once the signature is known to be good.
    """
    lib = _webauthn()
    try:
        verified = lib.verify_authentication_response(
            credential=credential,
            expected_challenge=challenge,
            expected_rp_id=rp.rp_id,
            expected_origin=list(rp.origins),
            credential_public_key=public_key,
            credential_current_sign_count=0,
            require_user_verification=True,
        )
    except Exception as exc:  # the library's exceptions, and malformed input it chokes on
        raise InvalidCode(f"The passkey did not verify ({type(exc).__name__}).") from None
    return Assertion(
        sign_count=int(verified.new_sign_count),
        device_type=str(getattr(verified.credential_device_type, "value", "single_device")),
        backed_up=bool(verified.credential_backed_up),
    )


def counter_regressed(stored: int, presented: int) -> bool:
    """True when a sign counter did not move forward (W3C WebAuthn §7.2 step 21): a sign of a
    cloned authenticator. Counters that stay at 0 (synced passkeys) are not counters."""
    return (stored > 0 or presented > 0) and presented <= stored
