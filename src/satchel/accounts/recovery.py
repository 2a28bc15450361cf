"""A forgotten password: ``forgot`` mails a reset link, ``reset`` uses it.

The link is bound to the account's address and to a fingerprint of the password hash it
was issued against, so any password change (this reset included) ends every other reset
link; it works once, for ``reset_ttl`` seconds. The new password is checked *before* the
token is used up, so a refused password leaves the link working. A reset ends every
session of the account (``reset_ends_sessions``) and mails a notice.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from satchel.accounts.account_policy import expires_text
from satchel.accounts.addresses import normalize_email
from satchel.accounts.passwords import check_new_password, check_password_length
from satchel.accounts.signup import email_store
from satchel.accounts.tokens import TokenKind
from satchel.stores.base import UserRecord
from satchel.stores.onetime import OneTimeRecord

if TYPE_CHECKING:
    from satchel.accounts.service import AccountService


class Recovery:
    """Password reset by mail."""

    def __init__(self, service: AccountService) -> None:
        self.s = service

    async def forgot(self, email: str, ip: str | None = None) -> None:
        """Mail a reset link if ``email`` belongs to an enabled account; answers the same
        either way (the lookup runs in the background)."""
        address = normalize_email(email)
        if not await self.s.throttle.request(address, ip):
            return

        async def job() -> None:
            user = await email_store(self.s).get_user_by_email(address)
            if user is None or user.disabled or user.email is None:
                return
            await self.s.forget(user.id, TokenKind.RESET)
            ttl = self.s.policy.reset_ttl
            token = await self.s.issue(
                TokenKind.RESET,
                ttl,
                user_id=user.id,
                email=user.email,
                data={"fp": self.s.hasher.fingerprint(user.password_hash)},
            )
            self.s.mail(
                "password_reset",
                user.email,
                username=user.username,
                link=self.s.link("/reset-password", token=token),
                expires_in=expires_text(ttl),
            )

        self.s.background(job, "password reset request")

    def _bound(self, record: OneTimeRecord, user: UserRecord) -> bool:
        fingerprint = self.s.hasher.fingerprint(user.password_hash)
        return record.data.get("fp") == fingerprint and record.email == user.email

    async def reset(self, token: object, new_password: str, ip: str | None = None) -> UserRecord:
        """Set a new password with a reset link; :class:`InvalidOneTimeToken` otherwise."""
        check_password_length(new_password)
        check_new_password(new_password)
        record = await self.s.peek(TokenKind.RESET, token, ip)
        user = await self.s.owner(record, ip)
        if not self._bound(record, user):
            raise await self.s.failed(ip, TokenKind.RESET)
        check_new_password(new_password, username=user.username)
        record = await self.s.take(TokenKind.RESET, token, ip)
        users = self.s.auth.users
        new_hash = await users.hasher.hash(new_password)
        # Re-read after the slow hash: a password changed meanwhile ends this link too.
        fresh = await self.s.owner(record, ip)
        if not self._bound(record, fresh):
            raise await self.s.failed(ip, TokenKind.RESET)
        fresh.password_hash = new_hash
        fresh.updated_at = self.s.now()
        await users.store.update_user(fresh)
        await self.s.forget(fresh.id, TokenKind.RESET, TokenKind.SIGNIN, TokenKind.SIGNIN_CODE)
        await self.s.audit("password.reset", user_id=fresh.id, username=fresh.username, ip=ip)
        if self.s.policy.reset_ends_sessions:
            await self.s.auth.revoke_user_sessions(fresh.id)
        else:
            await self.s.auth.strategy.user_changed(fresh)
        if fresh.email is not None:
            self.s.mail(
                "password_changed",
                fresh.email,
                username=fresh.username,
                reset_link=self.s.link("/forgot-password"),
            )
        return fresh
