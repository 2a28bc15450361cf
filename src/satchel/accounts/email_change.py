"""Changing the address of an account: asked for with the password, confirmed by a link
sent to the new address; the old address gets a notice.

The request answers the same whether the new address is free or taken (the owner of a
taken address gets an "address in use" mail instead of a link). Until the link is
confirmed the old address stays; confirming ends the account's other sessions
(``email_change_ends_sessions``; on a strategy without server-side sessions, every
credential) and is refused if the address changed meanwhile.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from satchel.accounts.account_policy import expires_text
from satchel.accounts.addresses import normalize_email
from satchel.accounts.signup import email_store, set_address
from satchel.accounts.throttle import LoginThrottled
from satchel.accounts.tokens import TokenKind
from satchel.audit import AuditEvent
from satchel.errors import AuthenticationError, InvalidInput
from satchel.identity import Identity
from satchel.stores.base import UserRecord
from satchel.stores.rules import email_key

if TYPE_CHECKING:
    from satchel.accounts.service import AccountService


class EmailChange:
    """Ask for and confirm a new address."""

    def __init__(self, service: AccountService) -> None:
        self.s = service

    async def _check_password(self, identity: Identity, password: str, ip: str | None) -> None:
        auth = self.s.auth
        try:
            await auth.throttle.check(identity.username, ip)
        except LoginThrottled as exc:
            auth_event = AuditEvent("throttled", user_id=identity.user_id, ip=ip, reason=exc.scope)
            await auth.audit.emit(auth_event)
            raise
        try:
            await auth.users.verify_login(identity.username, password)
        except AuthenticationError:
            await auth.throttle.failure(identity.username, ip)
            raise

    async def request(
        self, identity: Identity, new_email: str, password: str, ip: str | None = None
    ) -> None:
        """Mail a confirmation link to ``new_email`` (the current password is required)."""
        address = normalize_email(new_email)
        if not isinstance(password, str) or not password:
            raise InvalidInput("Enter your current password.")
        await self._check_password(identity, password, ip)
        user = await self.s.auth.users.get(identity.user_id)
        if user.email is not None and email_key(user.email) == email_key(address):
            return
        if not await self.s.throttle.request(address, ip):
            return

        async def job() -> None:
            owner = await email_store(self.s).get_user_by_email(address)
            if owner is not None:
                if owner.id != user.id:
                    self.s.mail("address_in_use", address, username=owner.username)
                return
            await self.s.forget(user.id, TokenKind.EMAIL_CHANGE)
            ttl = self.s.policy.email_change_ttl
            token = await self.s.issue(
                TokenKind.EMAIL_CHANGE,
                ttl,
                user_id=user.id,
                email=address,
                data={"old": user.email, "sid": identity.session_id},
            )
            self.s.mail(
                "email_change_confirm",
                address,
                username=user.username,
                new_email=address,
                link=self.s.link("/email/confirm", token=token),
                expires_in=expires_text(ttl),
            )

        self.s.background(job, "e-mail change request")

    async def confirm(self, token: object, ip: str | None = None) -> UserRecord:
        """Make the link's address the account's; notify the old address."""
        record = await self.s.take(TokenKind.EMAIL_CHANGE, token, ip)
        user = await self.s.owner(record, ip)
        old = record.data.get("old")
        if record.email is None or user.email != old:
            raise await self.s.failed(ip, TokenKind.EMAIL_CHANGE)
        user = await set_address(self.s, user, record.email)
        await self.s.forget(user.id, TokenKind.RESET, TokenKind.SIGNIN, TokenKind.SIGNIN_CODE)
        await self.s.audit("email.changed", user_id=user.id, username=user.username, ip=ip)
        if self.s.policy.email_change_ends_sessions:
            keep = record.data.get("sid")
            await self.s.end_sessions(
                user.id, keep=keep if isinstance(keep, str) else None, reason="email-changed"
            )
        if isinstance(old, str):
            self.s.mail("email_change_notice", old, username=user.username, new_email=user.email)
        return user
