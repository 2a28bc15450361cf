"""Limits of the mail flows (:class:`AccountThrottle`), on the login throttle's storage."""

from __future__ import annotations

import logging
from typing import Any

from satchel.accounts.throttle import LoginThrottle, LoginThrottled, ThrottlePolicy

logger = logging.getLogger("satchel.accounts")


class AccountThrottle:
    """Limits of the mail flows, on one ``limits`` storage.

    - requests per client address (over: 429) and per e-mail address (over: the request is
      answered as usual but nothing is sent, so the limit tells nothing about the address);
    - failed token and code attempts per client address (over: 429), and failed codes per
      e-mail address (over: 429, and the outstanding codes of that address are deleted).
    """

    def __init__(
        self,
        base: LoginThrottle,
        *,
        request_ip: tuple[int, float] = (30, 3600.0),
        request_address: tuple[int, float] = (5, 3600.0),
        failure_ip: tuple[int, float] = (50, 3600.0),
        code_address: tuple[int, float] = (5, 600.0),
    ) -> None:
        def make(name: str, ip: tuple[int, float] | None, acct: tuple[int, float] | None) -> Any:
            policy = ThrottlePolicy(
                account_limit=acct[0] if acct else 0,
                account_window=acct[1] if acct else 60.0,
                ip_limit=ip[0] if ip else 0,
                ip_window=ip[1] if ip else 60.0,
            )
            return LoginThrottle(
                base.storage, policy, clock=base.clock, prefix=f"{base.prefix}:{name}"
            )

        self.base = base
        self.request_ip: LoginThrottle = make("acct-req", request_ip, None)
        self.request_address: LoginThrottle = make("acct-req", None, request_address)
        self.failure_ip: LoginThrottle = make("acct-fail", failure_ip, None)
        self.code_address: LoginThrottle = make("acct-code", None, code_address)

    async def request(self, subject: str, ip: str | None) -> bool:
        """Count a mail request; 429 past the client limit, False past the address limit."""
        await self.request_ip.check("-", ip)
        await self.request_ip.failure("-", ip)
        try:
            await self.request_address.check(subject, None)
        except LoginThrottled:
            logger.info("mail request over the per-address limit; nothing sent")
            return False
        await self.request_address.failure(subject, None)
        return True

    async def close(self) -> None:
        """Close the shared storage."""
        await self.base.close()
