"""Passkeys of accounts: registration, usernameless sign-in, a passkey as second factor or
for a step-up, and listing, naming and removing them.

Every ceremony starts with options holding a fresh challenge that is stored server-side
for ``challenge_ttl`` seconds (5 minutes) under its SHA-256, with what it is for and, when
known, whose it is. The response is matched to it by the challenge it signed, and the
record is *taken* (deleted atomically) before anything else: a challenge answers one
response only, and one issued to one account is refused for another.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import replace
from typing import TYPE_CHECKING, Any, Final

from satchel.accounts.mfa import passkeys as wa
from satchel.accounts.mfa import pending as pending_mod
from satchel.accounts.mfa.errors import InvalidCode, InvalidMfaToken
from satchel.accounts.mfa.factors import MAX_PASSKEY_NAME, MAX_PASSKEYS, Factors, Passkey
from satchel.accounts.mfa.passkeys import RelyingParty
from satchel.accounts.mfa.pending import Finished
from satchel.errors import InvalidInput, NotFound
from satchel.identity import Identity
from satchel.jose import b64
from satchel.strategies.auth_methods import HWK, MFA, SWK
from satchel.strategies.base import LoginContext
from satchel.transports.base import IssuedCredentials

if TYPE_CHECKING:
    from satchel.accounts.mfa.service import MfaService

REGISTER: Final = "register"
LOGIN: Final = "login"
SECOND: Final = "second"  # after a password, with an mfa_token
REAUTH: Final = "reauth"


def _key(challenge: bytes) -> str:
    return "wa:" + hashlib.sha256(challenge).hexdigest()


def _name(name: object, fallback: str) -> str:
    text = name.strip() if isinstance(name, str) else ""
    text = "".join(ch for ch in text if ch.isprintable())[:MAX_PASSKEY_NAME]
    return text or fallback


class Passkeys:
    """The passkey ceremonies of one :class:`MfaService`."""

    def __init__(self, service: MfaService) -> None:
        self.service = service
        c = service.config
        self.rp = RelyingParty(rp_id=c.rp_id, name=c.rp_name, origins=tuple(c.origins))

    def __repr__(self) -> str:
        return f"Passkeys(rp_id={self.rp.rp_id!r})"

    # --- challenges ---------------------------------------------------------------------

    async def _challenge(self, purpose: str, user_id: str | None, token: str | None) -> bytes:
        s = self.service
        challenge = wa.new_challenge()
        now = s.clock()
        record = json.dumps({"p": purpose, "u": user_id, "t": token})
        expires = now + s.config.challenge_ttl
        await s.docs.io(s.docs.store.put_once(_key(challenge), record, expires, now))
        return challenge

    async def _take(self, credential: dict[str, Any], purpose: str) -> tuple[bytes, dict[str, Any]]:
        """The challenge the response signed and its record, used up; refused when it is
        unknown, expired, already answered or for another ceremony."""
        s = self.service
        challenge = wa.challenge_of(credential)
        raw = await s.docs.io(s.docs.store.take_once(_key(challenge), s.clock()))
        record = json.loads(raw) if raw is not None else None
        if not isinstance(record, dict) or record.get("p") != purpose:
            raise InvalidCode("The passkey challenge is unknown, expired or already used.")
        return challenge, record

    # --- registration -------------------------------------------------------------------

    async def _owner(self, identity: Identity | None, mfa_token: object) -> tuple[str, str | None]:
        """Whose passkey is being registered: a fresh signed-in caller, or an enrolment."""
        s = self.service
        if mfa_token is not None:
            found = await s.pending(mfa_token, pending_mod.ENROLL)
            assert isinstance(mfa_token, str)
            return found.user_id, pending_mod.key_of(mfa_token)
        if identity is None:
            raise InvalidMfaToken("Sign in, or send the mfa_token of the sign-in.")
        s.check_fresh(identity)
        return identity.user_id, None

    async def registration_options(
        self, identity: Identity | None, mfa_token: object = None
    ) -> dict[str, Any]:
        """Options for ``navigator.credentials.create()`` (the caller's existing passkeys
        are excluded, so an authenticator is not registered twice)."""
        s = self.service
        s._enabled()
        user_id, token_key = await self._owner(identity, mfa_token)
        user = await s.auth.users.get(user_id)
        factors = await s.docs.read(user_id)
        if len(factors.passkeys) >= MAX_PASSKEYS:
            raise InvalidInput(f"An account can have at most {MAX_PASSKEYS} passkeys.")
        challenge = await self._challenge(REGISTER, user_id, token_key)
        exclude = [key.credential_id for key in factors.passkeys]
        return wa.registration_options(self.rp, user.id, user.username, challenge, exclude)

    async def register(
        self,
        identity: Identity | None,
        credential: object,
        *,
        name: object = None,
        mfa_token: object = None,
        ctx: LoginContext | None = None,
    ) -> tuple[Passkey, Finished | None]:
        """Verify and store a new passkey; for an enrolment, also finish the sign-in."""
        s = self.service
        s._enabled()
        user_id, token_key = await self._owner(identity, mfa_token)
        data = wa.parse_credential(credential)
        challenge, record = await self._take(data, REGISTER)
        if record.get("u") != user_id or record.get("t") != token_key:
            raise InvalidCode("This passkey challenge was issued to another account.")
        new = wa.verify_registration(self.rp, data, challenge)
        now = s.clock()
        key = Passkey(
            credential_id=new.credential_id,
            public_key=new.public_key,
            sign_count=new.sign_count,
            name=_name(name, "Passkey"),
            created_at=now,
            device_type=new.device_type,
            backed_up=new.backed_up,
            transports=new.transports,
        )

        def change(f: Factors) -> tuple[None, bool]:
            if f.passkey(key.credential_id) is not None:
                raise InvalidInput("This passkey is already registered.")
            if len(f.passkeys) >= MAX_PASSKEYS:
                raise InvalidInput(f"An account can have at most {MAX_PASSKEYS} passkeys.")
            f.passkeys.append(key)
            return None, True

        await s.docs.update(user_id, change)
        await s._audit("passkey.added", user_id, credential=key.id[:16], synced=key.synced)
        if mfa_token is None:
            return key, None
        assert isinstance(mfa_token, str)
        found = await s.pending(mfa_token, pending_mod.ENROLL)
        finished = await s.finish(mfa_token, found, _methods(key), ctx or LoginContext())
        return key, finished

    # --- sign-in, second factor, step-up --------------------------------------------------

    async def login_options(self, mfa_token: object = None) -> dict[str, Any]:
        """Options for ``navigator.credentials.get()``: any passkey of this site (a
        usernameless sign-in), or, with an ``mfa_token``, one of that account's."""
        s = self.service
        if mfa_token is None:
            return wa.authentication_options(self.rp, await self._challenge(LOGIN, None, None))
        found = await s.pending(mfa_token, pending_mod.LOGIN)
        assert isinstance(mfa_token, str)
        allow = [k.credential_id for k in (await s.docs.read(found.user_id)).passkeys]
        challenge = await self._challenge(SECOND, found.user_id, pending_mod.key_of(mfa_token))
        return wa.authentication_options(self.rp, challenge, allow)

    async def reauth_options(self, identity: Identity) -> dict[str, Any]:
        """Options for a step-up with one of the caller's passkeys."""
        s = self.service
        allow = [k.credential_id for k in (await s.docs.read(identity.user_id)).passkeys]
        if not allow:
            raise NotFound("No passkey is registered for this account.")
        challenge = await self._challenge(REAUTH, identity.user_id, identity.session_id)
        return wa.authentication_options(self.rp, challenge, allow)

    async def _assert(
        self, data: dict[str, Any], challenge: bytes, user_id: str, ctx: LoginContext
    ) -> Passkey:
        """Verify an assertion of one of ``user_id``'s passkeys and record its use."""
        s = self.service
        cid = wa.credential_id_of(data)
        factors = await s.docs.read(user_id)
        key = factors.passkey(cid)
        if key is None:
            await s._failed(user_id, ctx, "passkey")
            raise InvalidCode("This passkey is not registered (or was removed).")
        if key.flagged:
            raise InvalidCode("This passkey was disabled after a sign-count regression.")
        assertion = wa.verify_authentication(self.rp, data, challenge, key.public_key)
        now = s.clock()

        def change(f: Factors) -> tuple[bool, bool]:
            current = f.passkey(cid)
            if current is None:
                return False, False
            if wa.counter_regressed(current.sign_count, assertion.sign_count):
                current.flagged = True  # the signature verified: a cloned authenticator
                return False, True
            current.sign_count = assertion.sign_count
            current.last_used_at = now
            current.backed_up = assertion.backed_up
            return True, True

        if not await s.docs.update(user_id, change):
            await s._audit(
                "passkey.sign_count_regression", user_id, ip=ctx.ip, credential=key.id[:16]
            )
            raise InvalidCode("This passkey's signature counter went backwards; it is disabled.")
        return key

    async def login(
        self, credential: object, ctx: LoginContext, *, mfa_token: object = None
    ) -> Finished:
        """A sign-in with a passkey: usernameless, or as the second factor of an
        ``mfa_token``. Returns the credential (via :meth:`MfaService.finish` or a login)."""
        s = self.service
        data = wa.parse_credential(credential)
        if mfa_token is not None:
            found = await s.pending(mfa_token, pending_mod.LOGIN)
            assert isinstance(mfa_token, str)
            challenge, record = await self._take(data, SECOND)
            if record.get("u") != found.user_id or record.get("t") != pending_mod.key_of(mfa_token):
                raise InvalidCode("This passkey challenge was issued to another sign-in.")
            await s._throttled(found.user_id, ctx)
            key = await self._assert(data, challenge, found.user_id, ctx)
            return await s.finish(mfa_token, found, _methods(key), ctx)
        challenge, _ = await self._take(data, LOGIN)
        user_id = wa.user_handle_of(data)
        if user_id is None:
            raise InvalidCode("The passkey did not say whose it is (not a discoverable one).")
        try:
            user = await s.auth.users.get(user_id)
        except NotFound:
            raise InvalidCode("This passkey is not registered (or was removed).") from None
        await s._throttled(user.id, ctx)
        key = await self._assert(data, challenge, user.id, ctx)
        done = replace(ctx, amr=frozenset(_methods(key)))
        return Finished(await s.auth.issue_login(user, done), ctx.transport)

    async def reauthenticate(
        self, identity: Identity, credential: object, ctx: LoginContext
    ) -> tuple[Identity, IssuedCredentials | None]:
        """A step-up with one of the caller's passkeys: renews ``auth_time``."""
        s = self.service
        data = wa.parse_credential(credential)
        challenge, record = await self._take(data, REAUTH)
        if record.get("u") != identity.user_id or record.get("t") != identity.session_id:
            raise InvalidCode("This passkey challenge was issued to another session.")
        await s._throttled(identity.user_id, ctx)
        key = await self._assert(data, challenge, identity.user_id, ctx)
        return await s.renew(identity, _methods(key), ctx)

    # --- managing --------------------------------------------------------------------------

    async def list(self, user_id: str) -> list[Passkey]:
        """The account's passkeys, oldest first."""
        return list((await self.service.docs.read(user_id)).passkeys)

    async def rename(self, identity: Identity, passkey_id: str, name: object) -> None:
        """Give one of the caller's passkeys a new name."""
        cid = _cid(passkey_id)
        label = _name(name, "")
        if not label:
            raise InvalidInput("Give the passkey a name.")

        def change(f: Factors) -> tuple[bool, bool]:
            key = f.passkey(cid)
            if key is None:
                return False, False
            key.name = label
            return True, True

        if not await self.service.docs.update(identity.user_id, change):
            raise NotFound("No such passkey.")

    async def remove(self, identity: Identity, passkey_id: str) -> None:
        """Remove one of the caller's passkeys (fresh authentication required); it cannot
        sign in from then on."""
        s = self.service
        s.check_fresh(identity)
        cid = _cid(passkey_id)

        def change(f: Factors) -> tuple[bool, bool]:
            key = f.passkey(cid)
            if key is None:
                return False, False
            f.passkeys.remove(key)
            return True, True

        if not await s.docs.update(identity.user_id, change):
            raise NotFound("No such passkey.")
        await s._audit("passkey.removed", identity.user_id, session=identity.session_id)


def _cid(passkey_id: str) -> bytes:
    try:
        cid = b64.decode(passkey_id)
    except ValueError:
        raise NotFound("No such passkey.") from None
    if not cid:
        raise NotFound("No such passkey.")
    return cid


def _methods(key: Passkey) -> frozenset[str]:
    """A user-verified passkey: possession of the key (synced: software) and the PIN or
    biometric that unlocked it, two factors at once."""
    return frozenset({SWK if key.synced else HWK, MFA})
