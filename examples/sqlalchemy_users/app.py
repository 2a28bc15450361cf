"""A FastAPI application that keeps its own SQLAlchemy ``User`` table and signs its users in
with satchel.

satchel keeps only sessions and signing keys in its own store (``SATCHEL_STORE``); every
account is read from the application's table through :class:`SQLAlchemyUserStore`.

Database URLs (the application's tables; SQLAlchemy async drivers):

- SQLite: ``sqlite+aiosqlite:///app.db``
- PostgreSQL: ``postgresql+asyncpg://app:secret@127.0.0.1:5432/app``
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Annotated, Any

from fastapi import APIRouter, Depends, FastAPI, Path, Request, Response
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from satchel import AuditLog, Auth, Identity, NotFound, PasswordHasher, Settings, build_auth
from satchel.accounts.passwords import check_new_password
from satchel.accounts.users import display_username, normalize_roles, normalize_username
from satchel.integrations.fastapi import (
    CurrentIdentity,
    check_csrf,
    get_auth,
    install,
    require_roles,
)
from satchel.stores.base import UserRecord

from .models import User
from .store import SQLAlchemyUserStore

router = APIRouter()
Admin = Annotated[Identity, Depends(require_roles("admin"))]


def database(request: Request) -> async_sessionmaker[AsyncSession]:
    """The application's session factory."""
    sessions: async_sessionmaker[AsyncSession] = request.app.state.db
    return sessions


async def create_app(
    settings: Settings,
    engine: AsyncEngine,
    *,
    hasher: PasswordHasher | None = None,
    audit: AuditLog | None = None,
) -> FastAPI:
    """The application, with satchel reading accounts from ``engine``'s ``users`` table.

    Async because :func:`satchel.build_auth` opens satchel's store; call it on the loop
    that will serve (see ``__main__.py``). The engine stays the caller's to dispose of.
    """
    sessions = async_sessionmaker(engine, expire_on_commit=False)
    auth = await build_auth(
        settings, users=SQLAlchemyUserStore(sessions), hasher=hasher, audit=audit
    )
    app = FastAPI(title="satchel with an application's own user table")
    app.state.db = sessions
    # Starts the revocation bus with the app and closes satchel's stores when it stops.
    install(app, settings, auth=auth)
    app.include_router(router)
    return app


async def register(
    auth: Auth,
    username: str,
    password: str,
    *,
    tenant_id: int,
    email: str | None = None,
    roles: Iterable[str] = (),
) -> UserRecord:
    """Sign-up: the application's own account creation, with satchel's name and password
    rules. The returned record's ``id`` is the new row's integer key, as a string."""
    display = display_username(username)
    check_new_password(password, username=display)
    now = auth.clock()
    record = UserRecord(
        id="",  # assigned by the database
        username=display,
        username_key=normalize_username(username),
        password_hash=await auth.users.hasher.hash(password),
        roles=normalize_roles(roles),
        created_at=now,
        updated_at=now,
        email=email,
        claims={"tenant_id": tenant_id},
    )
    await auth.users.store.create_user(record)
    return record


@router.get("/whoami")
async def whoami(identity: CurrentIdentity) -> dict[str, Any]:
    """The caller as satchel established them, with the application's claims."""
    return {
        "user_id": identity.user_id,
        "username": identity.username,
        "roles": sorted(identity.roles),
        "tenant_id": identity.claims.get("tenant_id"),
        "email": identity.claims.get("email"),
    }


@router.get("/profile")
async def profile(request: Request, identity: CurrentIdentity) -> dict[str, Any]:
    """The caller's own row: ``identity.user_id`` is the row's key as a string."""
    async with database(request)() as session:
        user = await session.get(User, int(identity.user_id))
    if user is None:
        raise NotFound("No such user.")
    return {"id": user.id, "username": user.username, "email": user.email, "tenant": user.tenant_id}


@router.post(
    "/admin/users/{user_id}/disable",
    status_code=204,
    # The app's own state-changing routes need the same CSRF check as satchel's.
    dependencies=[Depends(check_csrf)],
)
async def disable_user(
    request: Request, admin: Admin, user_id: Annotated[int, Path(ge=1, le=2**31 - 1)]
) -> Response:
    """Disable an account of the admin's own tenant; its sessions and tokens end at once."""
    async with database(request)() as session:
        actor = await session.get(User, int(admin.user_id))
        target = await session.get(User, user_id)
    if actor is None or target is None or target.tenant_id != actor.tenant_id:
        raise NotFound("No such user.")  # another tenant's accounts do not exist here
    # Through satchel: it writes is_active and valid_after via update_user and tells every
    # process, so cached sessions and unexpired tokens are refused on the next request.
    await get_auth(request).set_disabled(str(user_id), True, actor=admin)
    return Response(status_code=204)
