"""Wires the account life cycle into the reference server: the JSON routes, the pages, and
an :class:`~satchel.accounts.service.AccountService` started and closed with the app.

At start-up a server whose user store is empty prints a one-time link (``/setup``) that
creates the first administrator; ``satchel users add`` keeps working as before.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any, TextIO

from fastapi import FastAPI

from satchel.accounts.account_policy import expires_text
from satchel.accounts.service import AccountService
from satchel.config.build import ConfiguredAuth
from satchel.config.settings import Settings
from satchel.integrations.scope import STATE_KEY
from satchel.server import account_api, account_pages

logger = logging.getLogger("satchel.accounts")


async def announce_setup(service: AccountService, stream: TextIO | None = None) -> str | None:
    """Print the first-administrator link when there are no users; returns it."""
    link = await service.signup.setup_link()
    if link is None:
        return None
    out = stream if stream is not None else sys.stderr
    minutes = expires_text(service.policy.setup_ttl)
    out.write(
        "\n  No accounts yet. Create the first administrator (this link works once, "
        f"for {minutes}):\n  {link}\n\n"
    )
    out.flush()
    logger.info("first-administrator setup link printed")
    return link


def install(app: FastAPI, settings: Settings | None = None) -> None:
    """Add the account routes and pages to ``app`` and run the flows with its lifespan.

    The flows need an :class:`Auth` built from settings (its stores hold the one-time
    tokens); an app given another kind of :class:`Auth` serves the routes with a clear
    error instead.
    """
    app.include_router(account_api.router)
    app.include_router(account_pages.router)
    inner = app.router.lifespan_context

    @asynccontextmanager
    async def lifespan(running: Any) -> AsyncIterator[Any]:
        async with inner(running) as state:
            auth = getattr(running.state, STATE_KEY, None)
            if not isinstance(auth, ConfiguredAuth):
                logger.info("account flows off: the app's Auth was not built from settings")
                yield state
                return
            from satchel.config.accounts import build_accounts

            service = await build_accounts(auth, settings or auth.settings)
            setattr(running.state, account_api.STATE_ACCOUNTS, service)
            service.start()
            try:
                await announce_setup(service)
                yield state
            finally:
                await service.close()

    app.router.lifespan_context = lifespan
