"""Sign-in by mail: one mail carries a link and a 6-digit code; either signs in once.

The link's token is 256 bits and needs nothing else. The code is 20 bits, so it is only
accepted with the address it was sent to, dies with the link after ``signin_ttl``
seconds, and after ``code_attempts`` wrong codes for that address within the window the
address is refused (429) and its outstanding codes are deleted. Using one ends the other.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from satchel.accounts.account_policy import expires_text
from satchel.accounts.addresses import normalize_email
from satchel.accounts.signup import email_store
from satchel.accounts.throttle import LoginThrottled
from satchel.accounts.tokens import TokenKind, looks_like_code, new_code
from satchel.auth import LoginResult
from satchel.stores.onetime import OneTimeRecord
from satchel.stores.rules import email_key
from satchel.strategies.base import LoginContext

if TYPE_CHECKING:
    from satchel.accounts.service import AccountService


class SignInLinks:
    """Request and use sign-in links and codes."""

    def __init__(self, service: AccountService) -> None:
        self.s = service

    async def request(self, email: str, ip: str | None = None) -> None:
        """Mail a link and a code if ``email`` belongs to an enabled account (answers the
        same either way)."""
        address = normalize_email(email)
        if not await self.s.throttle.request(address, ip):
            return

        async def job() -> None:
            user = await email_store(self.s).get_user_by_email(address)
            if user is None or user.disabled or user.email is None:
                return
            await self.s.forget(user.id, TokenKind.SIGNIN, TokenKind.SIGNIN_CODE)
            ttl = self.s.policy.signin_ttl
            token = await self.s.issue(TokenKind.SIGNIN, ttl, user_id=user.id, email=user.email)
            code = new_code()
            hashed = self.s.hasher.code(TokenKind.SIGNIN_CODE, email_key(user.email), code)
            now = self.s.now()
            await self.s.tokens.put(
                OneTimeRecord(
                    kind=TokenKind.SIGNIN_CODE.value,
                    token_hash=hashed,
                    created_at=now,
                    expires_at=now + ttl,
                    user_id=user.id,
                    email=user.email,
                )
            )
            self.s.mail(
                "signin_link",
                user.email,
                username=user.username,
                link=self.s.link("/sign-in/link", token=token),
                code=code,
                expires_in=expires_text(ttl),
            )

        self.s.background(job, "sign-in link request")

    async def _finish(self, record: OneTimeRecord, ctx: LoginContext, how: str) -> LoginResult:
        user = await self.s.owner(record, ctx.ip)
        if user.email is None or record.email != user.email:
            raise await self.s.failed(ctx.ip, TokenKind(record.kind))
        await self.s.forget(user.id, TokenKind.SIGNIN, TokenKind.SIGNIN_CODE)
        return await self.s.sign_in(user, ctx, how)

    async def use_link(self, token: object, ctx: LoginContext) -> LoginResult:
        """Sign in with the link's token."""
        record = await self.s.take(TokenKind.SIGNIN, token, ctx.ip)
        return await self._finish(record, ctx, "link")

    async def use_code(self, email: str, code: object, ctx: LoginContext) -> LoginResult:
        """Sign in with the address and the code mailed to it."""
        address = normalize_email(email)
        key = email_key(address)
        limiter = self.s.throttle.code_address
        await self.s.guard(ctx.ip)
        await limiter.check(key, None)
        record = None
        if looks_like_code(code):
            assert isinstance(code, str)
            hashed = self.s.hasher.code(TokenKind.SIGNIN_CODE, key, code)
            record = await self.s.tokens.consume(TokenKind.SIGNIN_CODE.value, hashed, self.s.now())
        if record is None:
            await limiter.failure(key, None)
            try:
                await limiter.check(key, None)
            except LoginThrottled:
                self.s.background(lambda: self._kill_codes(address), "sign-in code lockout")
            raise await self.s.failed(ctx.ip, TokenKind.SIGNIN_CODE)
        return await self._finish(record, ctx, "code")

    async def _kill_codes(self, address: str) -> None:
        user = await email_store(self.s).get_user_by_email(address)
        if user is not None:
            await self.s.forget(user.id, TokenKind.SIGNIN_CODE)
