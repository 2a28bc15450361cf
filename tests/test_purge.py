"""The server purges expired sessions by itself, on every store that keeps rows."""

from __future__ import annotations

import asyncio

import pytest

from apps import Apps
from satchel.clock import ManualClock
from satchel.config.build import ConfiguredAuth
from satchel.strategies.base import LoginContext

PASSWORD = "a long enough passphrase"


async def _purged_by_the_background_task(auth: ConfiguredAuth, clock: ManualClock) -> None:
    settings = auth.settings
    try:
        user = await auth.users.create_user("purgeme", PASSWORD)
        await auth.login("purgeme", PASSWORD, LoginContext())
        await auth.login("purgeme", PASSWORD, LoginContext(remember=True))
        assert len(await auth.stores.sessions.list_user(user.id)) == 2
        # The short session passes its absolute time-out; the remembered one does not.
        clock.advance(settings.absolute_timeout + 1)
        for _ in range(200):  # bounded: the task runs every purge_interval seconds
            if len(await auth.stores.sessions.list_user(user.id)) == 1:
                break
            await asyncio.sleep(0.02)
        remaining = await auth.stores.sessions.list_user(user.id)
        assert len(remaining) == 1
        assert remaining[0].absolute_expires_at > clock()
    finally:
        await auth.close()
    assert auth._purger is None  # closed with the app


async def test_sqlite_server_purges_expired_sessions(make_app: Apps) -> None:
    clock = ManualClock()
    auth = await make_app.auth("sqlite", clock=clock, purge_interval=0.05)
    await _purged_by_the_background_task(auth, clock)


@pytest.mark.postgres
async def test_postgres_server_purges_expired_sessions(make_app: Apps) -> None:
    clock = ManualClock()
    auth = await make_app.auth("postgres", clock=clock, purge_interval=0.05)
    await _purged_by_the_background_task(auth, clock)


async def test_purge_interval_zero_starts_no_task(make_app: Apps) -> None:
    auth = await make_app.auth("sqlite", purge_interval=0)
    try:
        assert auth._purger is None
    finally:
        await auth.close()


@pytest.mark.redis
async def test_redis_sessions_expire_natively_so_no_purge_task_runs(
    make_app: Apps, redis_url: str, run_id: str
) -> None:
    settings = {"sessions_store": redis_url, "key_prefix": f"purge{run_id}", "bus": "local"}
    auth = await make_app.auth("memory", **settings)
    try:
        assert auth._purger is None
    finally:
        await auth.close()
