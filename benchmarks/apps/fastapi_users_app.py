"""fastapi-users, set up as its documentation's full example, with one strategy per process.

``FU_STRATEGY`` picks the strategy: ``jwt`` (stateless token, user read from the database),
``redis`` (token -> user id in Redis) or ``database`` (access-token table). Users live in SQLite
through SQLAlchemy + aiosqlite.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncGenerator, AsyncIterator
from contextlib import asynccontextmanager
from typing import Annotated, Any

import redis.asyncio
from fastapi import Depends, FastAPI
from fastapi_users import BaseUserManager, FastAPIUsers, UUIDIDMixin, schemas
from fastapi_users.authentication import (
    AuthenticationBackend,
    BearerTransport,
    JWTStrategy,
    RedisStrategy,
    Strategy,
)
from fastapi_users.authentication.strategy.db import AccessTokenDatabase, DatabaseStrategy
from fastapi_users.db import SQLAlchemyBaseUserTableUUID, SQLAlchemyUserDatabase
from fastapi_users_db_sqlalchemy.access_token import (
    SQLAlchemyAccessTokenDatabase,
    SQLAlchemyBaseAccessTokenTableUUID,
)
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker, create_async_engine
from sqlalchemy.orm import DeclarativeBase

SECRET = os.environ.get("BENCH_SECRET", "")
STRATEGY = os.environ.get("FU_STRATEGY", "jwt")
DATABASE_URL = f"sqlite+aiosqlite:///{os.environ.get('FU_DB', 'fastapi-users.db')}"
REDIS_URL = os.environ.get("FU_REDIS_URL", "redis://127.0.0.1:6379/0")
REDIS_PREFIX = os.environ.get("FU_REDIS_PREFIX", "fastapi_users_token:")


class Base(DeclarativeBase):
    pass


class User(SQLAlchemyBaseUserTableUUID, Base):
    pass


class AccessToken(SQLAlchemyBaseAccessTokenTableUUID, Base):
    pass


class UserRead(schemas.BaseUser[uuid.UUID]):
    pass


class UserCreate(schemas.BaseUserCreate):
    pass


engine = create_async_engine(DATABASE_URL)
async_session_maker = async_sessionmaker(engine, expire_on_commit=False)
redis_client = redis.asyncio.Redis.from_url(REDIS_URL, decode_responses=True)


async def get_async_session() -> AsyncGenerator[AsyncSession, None]:
    async with async_session_maker() as session:
        yield session


async def get_user_db(
    session: Annotated[AsyncSession, Depends(get_async_session)],
) -> AsyncGenerator[SQLAlchemyUserDatabase[User, uuid.UUID], None]:
    yield SQLAlchemyUserDatabase(session, User)


async def get_access_token_db(
    session: Annotated[AsyncSession, Depends(get_async_session)],
) -> AsyncGenerator[SQLAlchemyAccessTokenDatabase[AccessToken], None]:
    yield SQLAlchemyAccessTokenDatabase(session, AccessToken)


class UserManager(UUIDIDMixin, BaseUserManager[User, uuid.UUID]):
    reset_password_token_secret = SECRET
    verification_token_secret = SECRET


async def get_user_manager(
    user_db: Annotated[SQLAlchemyUserDatabase[User, uuid.UUID], Depends(get_user_db)],
) -> AsyncGenerator[UserManager, None]:
    yield UserManager(user_db)


def get_jwt_strategy() -> Strategy[User, uuid.UUID]:
    return JWTStrategy(secret=SECRET, lifetime_seconds=3600)


def get_redis_strategy() -> Strategy[User, uuid.UUID]:
    return RedisStrategy(redis_client, lifetime_seconds=3600, key_prefix=REDIS_PREFIX)


def get_database_strategy(
    access_token_db: Annotated[AccessTokenDatabase[AccessToken], Depends(get_access_token_db)],
) -> Strategy[User, uuid.UUID]:
    return DatabaseStrategy(access_token_db, lifetime_seconds=3600)


_STRATEGIES: dict[str, Any] = {
    "jwt": get_jwt_strategy,
    "redis": get_redis_strategy,
    "database": get_database_strategy,
}

backend = AuthenticationBackend(
    name=STRATEGY,
    transport=BearerTransport(tokenUrl="auth/login"),
    get_strategy=_STRATEGIES[STRATEGY],
)
fastapi_users = FastAPIUsers[User, uuid.UUID](get_user_manager, [backend])
current_active_user = fastapi_users.current_user(active=True)


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    async with engine.begin() as conn:
        await conn.run_sync(Base.metadata.create_all)
    yield
    await redis_client.aclose()
    await engine.dispose()


app = FastAPI(lifespan=lifespan)
app.include_router(fastapi_users.get_auth_router(backend), prefix="/auth")
app.include_router(fastapi_users.get_register_router(UserRead, UserCreate), prefix="/auth")


@app.get("/me")
async def me(user: Annotated[User, Depends(current_active_user)]) -> dict[str, Any]:
    return {"user": user.email}
