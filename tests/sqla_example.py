"""Helpers for the tests of examples/sqlalchemy_users: the application's own database (a real
SQLite file or a fresh PostgreSQL schema) and the running app in front of it.

Import as ``from sqla_example import ...``; it puts ``examples/`` on ``sys.path`` so the
example imports as the package ``sqlalchemy_users``.
"""

from __future__ import annotations

import itertools
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "examples"))

from sqlalchemy_users.app import create_app, register
from sqlalchemy_users.models import Base, User
from sqlalchemy_users.store import SQLAlchemyUserStore

from satchel import AuditEvent, AuditLog, PasswordHasher, Settings
from satchel.config.build import ConfiguredAuth
from satchel.integrations.asgi import STATE_KEY

__all__ = [
    "BASE",
    "PASSWORD",
    "SAME_ORIGIN",
    "Backend",
    "RunningApp",
    "SQLAlchemyUserStore",
    "User",
    "create_app",
    "open_backend",
    "running_app",
    "sign_in",
]

PASSWORD = "correct horse battery"
BASE = "https://testserver"
#: What a browser sends with a same-origin fetch (the cookie transport's CSRF check).
SAME_ORIGIN = {"Origin": BASE, "Sec-Fetch-Site": "same-origin"}
_counter = itertools.count()


@dataclass
class Backend:
    """The application's engine and satchel's store URL, side by side in one database kind."""

    kind: str
    engine: AsyncEngine
    settings: dict[str, Any]

    @property
    def db(self) -> async_sessionmaker[AsyncSession]:
        return async_sessionmaker(self.engine, expire_on_commit=False)

    async def row(self, user_id: str) -> User:
        """The application's row behind satchel's ``user_id``, read afresh."""
        async with self.db() as session:
            user = await session.get(User, int(user_id))
        assert user is not None
        return user


@asynccontextmanager
async def open_backend(
    kind: str, tmp_path: Path, *, database_url: str | None = None, run_id: str = ""
) -> AsyncIterator[Backend]:
    """A fresh application database with its tables, and matching satchel settings."""
    n = next(_counter)
    if kind == "sqlite":
        # Two files: the application's and satchel's (sessions, keys, revocations).
        engine = create_async_engine(f"sqlite+aiosqlite:///{tmp_path / f'app-{n}.db'}")
        settings: dict[str, Any] = {"store": f"sqlite:///{tmp_path / f'satchel-{n}.db'}"}
        schemas: list[str] = []
    else:
        assert database_url is not None
        app_schema, satchel_schema = f"app_test_{run_id}_{n}", f"satchel_test_{run_id}_{n}"
        schemas = [app_schema, satchel_schema]
        url = make_url(database_url).set(drivername="postgresql+asyncpg")
        engine = create_async_engine(url).execution_options(schema_translate_map={None: app_schema})
        async with engine.begin() as conn:
            await conn.execute(text(f'CREATE SCHEMA "{app_schema}"'))
        settings = {"store": database_url, "pg_schema": satchel_schema}
    try:
        async with engine.begin() as conn:
            await conn.run_sync(Base.metadata.create_all)
        yield Backend(kind, engine, settings)
    finally:
        for schema in schemas:
            async with engine.begin() as conn:
                await conn.execute(text(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))
        await engine.dispose()


@dataclass
class RunningApp:
    """The example app, started, with an httpx client and the audit events it emitted."""

    backend: Backend
    client: httpx.AsyncClient
    auth: ConfiguredAuth
    events: list[AuditEvent] = field(default_factory=list)
    ids: dict[str, str] = field(default_factory=dict)
    opened: list[httpx.AsyncClient] = field(default_factory=list)

    def browser(self) -> httpx.AsyncClient:
        """Another client of the same app, with its own cookie jar (closed with the app)."""
        client = httpx.AsyncClient(transport=self.client._transport, base_url=BASE)
        self.opened.append(client)
        return client

    def names(self) -> list[str]:
        return [event.name for event in self.events]


@asynccontextmanager
async def running_app(backend: Backend, **overrides: Any) -> AsyncIterator[RunningApp]:
    """The app over ``backend`` with alice (admin) and bob in tenant 7, carol in tenant 9."""
    events: list[AuditEvent] = []

    async def record(event: AuditEvent) -> None:
        events.append(event)

    hasher = PasswordHasher.insecure_fast_for_tests()
    settings = Settings(**{**backend.settings, **overrides})
    app = await create_app(settings, backend.engine, hasher=hasher, audit=AuditLog(record))
    lifespan = app.router.lifespan_context(app)
    await lifespan.__aenter__()
    try:
        auth = get_auth_of(app)
        ids = {}
        for name, tenant, roles in (("alice", 7, ["admin"]), ("bob", 7, []), ("carol", 9, [])):
            user = await register(
                auth, name, PASSWORD, tenant_id=tenant, email=f"{name}@example.com", roles=roles
            )
            ids[name] = user.id
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url=BASE) as client:
            running = RunningApp(backend, client, auth, events, ids)
            try:
                yield running
            finally:
                for other in running.opened:
                    await other.aclose()
    finally:
        await lifespan.__aexit__(None, None, None)
        hasher.close()


def get_auth_of(app: Any) -> ConfiguredAuth:
    """The :class:`ConfiguredAuth` the app was installed with."""
    auth = getattr(app.state, STATE_KEY)
    assert isinstance(auth, ConfiguredAuth)
    return auth


async def sign_in(client: httpx.AsyncClient, transport: str, name: str) -> dict[str, str]:
    """Sign ``name`` in over ``transport``; the headers later requests need (bearer)."""
    if transport == "cookie":
        response = await client.post(
            "/auth/login", json={"username": name, "password": PASSWORD}, headers=SAME_ORIGIN
        )
        assert response.status_code == 200, response.text
        return {}
    response = await client.post(
        "/auth/token", data={"grant_type": "password", "username": name, "password": PASSWORD}
    )
    assert response.status_code == 200, response.text
    return {"Authorization": f"Bearer {response.json()['access_token']}"}
