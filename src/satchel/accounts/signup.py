"""Accounts coming in: the first administrator, invitations, sign-up and address
verification.

An account's ``email`` only ever holds an address its owner proved (by a link sent there):
sign-up creates the account without one and sends the link; the address is set when the
link's confirmation is posted. So nobody can claim someone else's address by signing up
with it, and an unconfirmed sign-up blocks no one.

Open sign-up answers the same whether the address is new or taken: the request checks its
input and queues a job; the job either creates the account and sends the link, or sends
the address's owner a "someone tried to register" mail.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from typing import TYPE_CHECKING
from urllib.parse import urlencode

from satchel.accounts.account_policy import AddressTaken, SignupClosed, expires_text
from satchel.accounts.addresses import normalize_email
from satchel.accounts.passwords import check_new_password
from satchel.accounts.tokens import InvalidOneTimeToken, TokenHasher, TokenKind, new_token
from satchel.accounts.users import display_username, normalize_roles, normalize_username
from satchel.auth import LoginResult
from satchel.errors import InvalidInput, UserExists
from satchel.identity import Identity
from satchel.stores.base import EmailUserStore, UserRecord
from satchel.stores.onetime import OneTimeRecord, OneTimeTokenStore
from satchel.stores.rules import email_key
from satchel.strategies.base import LoginContext

if TYPE_CHECKING:
    from satchel.accounts.service import AccountService

logger = logging.getLogger("satchel.accounts")


def email_store(service: AccountService) -> EmailUserStore:
    """The user store's lookup by address (every bundled backend has it)."""
    store = service.auth.users.store
    if not isinstance(store, EmailUserStore):
        raise InvalidInput("This user store cannot find accounts by e-mail address.")
    return store


class SignUp:
    """First administrator, invitations, sign-up, verification."""

    def __init__(self, service: AccountService) -> None:
        self.s = service

    # --- first administrator --------------------------------------------------------------

    async def has_users(self) -> bool:
        return bool(await self.s.auth.users.list_users(limit=1))

    async def setup_link(self) -> str | None:
        """A one-time link to create the first administrator, or None when users exist."""
        if await self.has_users():
            return None
        token = await self.s.issue(TokenKind.SETUP, self.s.policy.setup_ttl)
        return self.s.link("/setup", token=token)

    async def create_first_admin(
        self, token: object, username: str, password: str, ctx: LoginContext
    ) -> LoginResult:
        """Use the setup link: create the first administrator and sign them in."""
        display = display_username(username)
        normalize_username(username)
        check_new_password(password, username=display)
        await self.s.peek(TokenKind.SETUP, token, ctx.ip)
        if await self.has_users():
            raise InvalidOneTimeToken("This server is already set up; sign in instead.")
        await self.s.take(TokenKind.SETUP, token, ctx.ip)
        user = await self.s.auth.users.create_user(display, password, [self.s.policy.admin_role])
        await self.s.audit("setup.admin_created", user_id=user.id, username=user.username)
        return await self.s.sign_in(user, ctx, "setup")

    # --- invitations ----------------------------------------------------------------------

    async def create_invite(self, email: str | None = None, roles: Iterable[str] = ()) -> str:
        """An invitation link (for one sign-up; bound to ``email`` when given)."""
        policy = self.s.policy
        link = await new_invite(
            self.s.tokens,
            self.s.hasher,
            public_url=policy.public_url,
            ttl=policy.invite_ttl,
            now=self.s.now(),
            email=email,
            roles=roles,
        )
        await self.s.audit("invite.created", extra={"roles": ",".join(normalize_roles(roles))})
        return link

    # --- sign-up --------------------------------------------------------------------------

    async def register(
        self,
        username: str,
        password: str,
        email: str | None,
        *,
        invite: str | None = None,
        ip: str | None = None,
    ) -> None:
        """Sign up; the answer is the same whether the address is new or taken.

        Raises before anything is written for bad input, a taken username, a closed
        sign-up or a bad invitation; the account itself is created by a background job.
        """
        mode = self.s.policy.signup
        if mode == "closed":
            raise SignupClosed("Sign-up is closed here; ask an administrator for an account.")
        if mode == "invite" and not invite:
            raise SignupClosed("Sign-up needs an invitation here.")
        display = display_username(username)
        key = normalize_username(username)
        address = normalize_email(email) if email else None
        check_new_password(password, username=display)
        roles: list[str] = []
        if invite:
            record = await self.s.peek(TokenKind.INVITE, invite, ip)
            if record.email is not None:
                if address is not None and email_key(address) != email_key(record.email):
                    raise InvalidInput("This invitation is for another e-mail address.")
                address = record.email
        if address is None:
            raise InvalidInput("Enter your e-mail address.")
        if await self.s.auth.users.store.get_user_by_name(key) is not None:
            raise UserExists("This username is taken; choose another.")
        if not await self.s.throttle.request(address, ip):
            return
        if invite:
            record = await self.s.take(TokenKind.INVITE, invite, ip)
            roles = normalize_roles(record.data.get("roles") or [])

        async def job() -> None:
            await self._register(display, password, address, roles, ip)

        self.s.background(job, "sign-up")

    async def _register(
        self, username: str, password: str, address: str, roles: list[str], ip: str | None
    ) -> None:
        owner = await email_store(self.s).get_user_by_email(address)
        if owner is not None:
            self.s.mail(
                "already_registered",
                address,
                username=owner.username,
                signin_link=self.s.link("/sign-in/link"),
                reset_link=self.s.link("/forgot-password"),
            )
            await self.s.audit("signup.address_taken", user_id=owner.id, ip=ip)
            return
        try:
            user = await self.s.auth.users.create_user(username, password, roles)
        except UserExists:
            logger.info("sign-up lost a race for its username; nothing created")
            return
        await self.s.audit("signup", user_id=user.id, username=user.username, ip=ip)
        await self.send_verification(user, address)

    # --- verification ---------------------------------------------------------------------

    async def send_verification(self, user: UserRecord, address: str) -> None:
        """Issue a verification link for ``address`` and mail it there."""
        ttl = self.s.policy.verify_ttl
        token = await self.s.issue(TokenKind.VERIFY, ttl, user_id=user.id, email=address)
        self.s.mail(
            "verify_email",
            address,
            username=user.username,
            link=self.s.link("/verify-email", token=token),
            expires_in=expires_text(ttl),
        )

    async def verify(self, token: object, ip: str | None = None) -> UserRecord:
        """Confirm the address of a verification link; it becomes the account's address."""
        record = await self.s.take(TokenKind.VERIFY, token, ip)
        user = await self.s.owner(record, ip)
        address = record.email
        if address is None or (user.email is not None and user.email != address):
            raise await self.s.failed(ip, TokenKind.VERIFY)
        user = await set_address(self.s, user, address)
        await self.s.forget(user.id, TokenKind.VERIFY)
        await self.s.audit("email.verified", user_id=user.id, username=user.username)
        return user

    async def resend(self, identity: Identity, ip: str | None = None) -> None:
        """Send the caller's pending verification link again (a new one; the old one ends)."""
        if not await self.s.throttle.request(f"user:{identity.user_id}", ip):
            return

        async def job() -> None:
            user = await self.s.auth.users.store.get_user(identity.user_id)
            if user is None or user.email is not None:
                return
            pending = await self.s.tokens.list_for_user(
                TokenKind.VERIFY.value, user.id, self.s.now()
            )
            if not pending or pending[-1].email is None:
                return
            await self.s.forget(user.id, TokenKind.VERIFY)
            await self.send_verification(user, pending[-1].email)

        self.s.background(job, "verification resend")


async def new_invite(
    tokens: OneTimeTokenStore,
    hasher: TokenHasher,
    *,
    public_url: str,
    ttl: float,
    now: float,
    email: str | None = None,
    roles: Iterable[str] = (),
) -> str:
    """Store an invitation and return its link; needs no :class:`Auth` (the CLI uses it)."""
    address = normalize_email(email) if email else None
    role_list = normalize_roles(roles)
    token = new_token()
    await tokens.put(
        OneTimeRecord(
            kind=TokenKind.INVITE.value,
            token_hash=hasher.token(TokenKind.INVITE, token),
            created_at=now,
            expires_at=now + ttl,
            email=address,
            data={"roles": role_list},
        )
    )
    return f"{public_url}/register?{urlencode({'invite': token})}"


async def set_address(service: AccountService, user: UserRecord, address: str) -> UserRecord:
    """Store ``address`` as the account's (re-read first); :class:`AddressTaken` if another
    account has it."""
    fresh = await service.auth.users.store.get_user(user.id)
    if fresh is None:
        raise InvalidOneTimeToken()
    fresh.email = address
    fresh.updated_at = service.now()
    try:
        await service.auth.users.store.update_user(fresh)
    except UserExists:
        raise AddressTaken("This address already belongs to another account.") from None
    return fresh
