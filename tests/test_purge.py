"""The server purges expired sessions by itself, on every store that keeps rows."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from apps import drop_schema
from satchel.accounts.passwords import PasswordHasher
from satchel.clock import ManualClock
from satchel.config.build import build_auth
from satchel.config.settings import Settings
from satchel.strategies.base import LoginContext

PASSWORD = "a long enough passphrase"


async def _purged_by_the_background_task(settings: Settings, clock: ManualClock) -> None:
    auth = await build_auth(settings, clock=clock, hasher=PasswordHasher.insecure_fast_for_tests())
    await auth.start()
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


async def test_sqlite_server_purges_expired_sessions(tmp_path: Path) -> None:
    settings = Settings(store=f"sqlite:///{tmp_path / 'p.db'}", purge_interval=0.05)
    await _purged_by_the_background_task(settings, ManualClock())


@pytest.mark.postgres
async def test_postgres_server_purges_expired_sessions(database_url: str, run_id: str) -> None:
    schema = f"purge_{run_id}".lower()
    settings = Settings(store=database_url, pg_schema=schema, purge_interval=0.05)
    try:
        await _purged_by_the_background_task(settings, ManualClock())
    finally:
        await drop_schema(database_url, schema)


async def test_purge_interval_zero_starts_no_task(tmp_path: Path) -> None:
    settings = Settings(store=f"sqlite:///{tmp_path / 'p.db'}", purge_interval=0)
    auth = await build_auth(settings, hasher=PasswordHasher.insecure_fast_for_tests())
    await auth.start()
    try:
        assert auth._purger is None
    finally:
        await auth.close()


@pytest.mark.redis
async def test_redis_sessions_expire_natively_so_no_purge_task_runs(
    redis_url: str, run_id: str
) -> None:
    settings = Settings(
        store="memory://", sessions_store=redis_url, key_prefix=f"purge{run_id}", bus="local"
    )
    auth = await build_auth(settings, hasher=PasswordHasher.insecure_fast_for_tests())
    await auth.start()
    try:
        assert auth._purger is None
    finally:
        await auth.close()
