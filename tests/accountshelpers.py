"""An in-process reference server with the account flows, mailing to a real SMTP server.

``account_app(...)`` starts aiosmtpd (see ``mailhelpers``) and the app in this event loop;
the app mails through SMTP, its clock is a :class:`ManualClock`, passwords use the fast
test hasher. ``App.mail(address)`` waits for the background jobs and the next mail.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass
from typing import Any

import httpx

from mailhelpers import Catcher, Received, smtp_server
from satchel.accounts.passwords import PasswordHasher
from satchel.accounts.service import AccountService
from satchel.clock import ManualClock
from satchel.config.build import ConfiguredAuth, build_auth
from satchel.config.settings import Settings
from satchel.server import create_app

BASE = "https://testserver"
PUBLIC = "https://auth.example.com"
PASSWORD = "correct horse battery"
NEW_PASSWORD = "purple walrus anthem 9"

_hasher = PasswordHasher.insecure_fast_for_tests()


@dataclass
class App:
    client: httpx.AsyncClient
    auth: ConfiguredAuth
    service: AccountService
    clock: ManualClock
    catcher: Catcher
    app: Any

    def browser(self) -> httpx.AsyncClient:
        """Another client of the same app, with its own cookies."""
        return httpx.AsyncClient(transport=self.client._transport, base_url=BASE)

    async def settle(self) -> None:
        await self.service.join()
        outbox = self.service.outbox
        join = getattr(outbox, "join", None)
        if join is not None:
            await join()

    async def mail(self, address: str, count: int | None = None) -> Received:
        """The ``count``-th mail to ``address`` (default: one more than before settling)."""
        await self.settle()
        number = count if count is not None else len(self.catcher.to(address))
        return await self.catcher.wait_for(address, max(number, 1))

    def mails(self, address: str) -> list[Received]:
        return self.catcher.to(address)

    async def user(self, name: str) -> Any:
        return await self.auth.users.get_by_name(name)

    async def add_user(
        self, name: str, email: str | None = None, roles: tuple[str, ...] = ()
    ) -> Any:
        user = await self.auth.users.create_user(name, PASSWORD, roles)
        if email is not None:
            user.email = email
            await self.auth.users.store.update_user(user)
        return user


async def login(client: httpx.AsyncClient, username: str, password: str = PASSWORD) -> None:
    response = await client.post("/auth/login", json={"username": username, "password": password})
    assert response.status_code == 200, response.text


@asynccontextmanager
async def account_app(
    store: str = "memory://", *, smtp_port: int | None = None, **overrides: Any
) -> AsyncIterator[App]:
    """The app and its SMTP server; ``smtp_port`` points the app at a port instead (down)."""
    async with AsyncExitStack() as stack:
        catcher, port = await stack.enter_async_context(smtp_server("plain"))
        options: dict[str, Any] = {
            "store": store,
            "mail_url": f"smtp://127.0.0.1:{smtp_port or port}?timeout=2",
            "public_url": PUBLIC,
            "signup": "open",
            "mail_retry_delay": 0.01,
            "mail_from": "satchel <no-reply@example.com>",
        }
        options.update(overrides)
        settings = Settings(**options)
        clock = ManualClock()
        auth = await build_auth(settings, clock=clock, hasher=_hasher)
        app = create_app(settings, auth=auth)
        lifespan = app.router.lifespan_context(app)
        await lifespan.__aenter__()
        client = httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=BASE)
        try:
            service = app.state.satchel_accounts
            yield App(client, auth, service, clock, catcher, app)
        finally:
            await client.aclose()
            await lifespan.__aexit__(None, None, None)
