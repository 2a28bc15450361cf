"""Run the example: ``python -m examples.sqlalchemy_users [serve | add-user NAME --tenant N]``.

``APP_DATABASE_URL`` names the application's database (default ``sqlite+aiosqlite:///app.db``;
PostgreSQL: ``postgresql+asyncpg://user:password@host/db``). satchel's own settings come from
``SATCHEL_*`` (``SATCHEL_STORE`` keeps sessions and keys: ``sqlite:///satchel.db`` by default,
or ``postgresql://...``).
"""

from __future__ import annotations

import argparse
import asyncio
import getpass
import os

from sqlalchemy.ext.asyncio import AsyncEngine, async_sessionmaker, create_async_engine

from satchel import SatchelError, Settings, build_auth

from .app import create_app, register
from .models import Base
from .store import SQLAlchemyUserStore

DEFAULT_DATABASE_URL = "sqlite+aiosqlite:///app.db"


async def open_database() -> AsyncEngine:
    """The application's engine, its tables created (a real application runs migrations)."""
    engine = create_async_engine(os.environ.get("APP_DATABASE_URL", DEFAULT_DATABASE_URL))
    async with engine.begin() as conn:
        await conn.run_sync(Base.metadata.create_all)
    return engine


async def serve() -> None:
    """Build the app on this loop, then serve it with uvicorn on the same loop."""
    import uvicorn

    settings = Settings()
    engine = await open_database()
    try:
        app = await create_app(settings, engine)
        config = uvicorn.Config(app, host=settings.host, port=settings.port)
        await uvicorn.Server(config).serve()
    finally:
        await engine.dispose()


async def add_user(name: str, tenant: int, email: str | None, roles: list[str]) -> None:
    """Create an account in the application's table (the password is prompted for)."""
    password = getpass.getpass("password: ")
    if getpass.getpass("again: ") != password:
        raise SystemExit("The passwords differ.")
    engine = await open_database()
    try:
        store = SQLAlchemyUserStore(async_sessionmaker(engine, expire_on_commit=False))
        auth = await build_auth(Settings(), users=store)
        try:
            user = await register(auth, name, password, tenant_id=tenant, email=email, roles=roles)
        except SatchelError as exc:
            raise SystemExit(f"error: {exc.detail}") from None
        finally:
            await auth.close()
        print(f"created user {user.username!r} with id {user.id}")
    finally:
        await engine.dispose()


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m examples.sqlalchemy_users")
    commands = parser.add_subparsers(dest="command")
    commands.add_parser("serve", help="serve the app (the default)")
    adding = commands.add_parser("add-user", help="create an account")
    adding.add_argument("name")
    adding.add_argument("--tenant", type=int, required=True)
    adding.add_argument("--email")
    adding.add_argument("--role", action="append", default=[])
    args = parser.parse_args()
    if args.command == "add-user":
        asyncio.run(add_user(args.name, args.tenant, args.email, args.role))
    else:
        asyncio.run(serve())


if __name__ == "__main__":
    main()
