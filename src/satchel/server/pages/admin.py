"""The admin page: users, every active session (filterable), force logout, signing keys.

Open to the ``admin`` role only; every action is a form post that re-renders the page with
the error when it fails, or redirects with a notice when it succeeds.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Awaitable, Callable, Sequence
from typing import Annotated, Any, Final

from fastapi import APIRouter, Path, Response
from fastapi.responses import HTMLResponse
from starlette.requests import Request

from satchel.auth import Auth
from satchel.errors import InvalidInput, NotFound, NotSupported, SatchelError, UserExists
from satchel.identity import Identity
from satchel.integrations.fastapi import OptionalIdentity, get_auth
from satchel.integrations.refresh import cookie_transport
from satchel.keys.schedule import KeyStatus, key_statuses
from satchel.server.pages.access import page_identity, to_login
from satchel.server.pages.devices import SessionIdPath, session_row
from satchel.server.pages.formatting import format_span, format_time, relative
from satchel.server.pages.forms import Posted, accept_post, field, page_context
from satchel.server.pages.notices import NOTICES, with_notice
from satchel.server.pages.render import ADMIN_ROLE, error_page, redirect, render
from satchel.stores.base import SessionRecord, UserRecord

#: Most sessions the admin page lists (newest first) and most users it shows.
ADMIN_SESSION_LIMIT: Final = 200
ADMIN_USER_LIMIT: Final = 500
MAX_FILTER_CHARS: Final = 150

UserIdPath = Annotated[str, Path(min_length=1, max_length=128)]
AdminAction = Callable[[Posted], Awaitable[str]]

router = APIRouter(include_in_schema=False)


def parse_roles(text: str) -> list[str]:
    """Roles typed as ``admin, ops`` or ``admin ops``."""
    return [part for part in text.replace(",", " ").split() if part]


async def _keys_view(auth: Auth) -> dict[str, Any]:
    keys = auth.keys
    if keys is None:
        return {"keys_supported": False, "stored_keys": [], "jwks": None}
    stored = key_statuses(await keys.list(), auth.clock(), keys.publish_delay)
    try:
        jwks: str | None = json.dumps((await keys.published()).jwks(auth.clock()), indent=2)
    except SatchelError:
        jwks = None
    return {"keys_supported": True, "stored_keys": stored, "jwks": jwks}


def rotation_notice(stored: Sequence[KeyStatus], publish_delay: float, now: float) -> str:
    """The "keys rotated" message, saying when the new key starts signing (``signs_from`` of
    the pending key: its creation plus the publish delay)."""
    pending = [key.signs_from for key in stored if key.signs_from is not None]
    if not pending:
        return NOTICES["keys-rotated"]
    starts = max(pending)
    return (
        f"New signing key published. It starts signing {relative(starts, now)} "
        f"({format_time(starts)}), after the publish delay of {format_span(publish_delay)} "
        "that lets every server load it first; until then the current key keeps signing."
    )


@dataclasses.dataclass(slots=True)
class SessionsView:
    """The sessions table (None: the strategy keeps none) and each user's session count."""

    records: list[SessionRecord] | None = None
    counts: dict[str, int] = dataclasses.field(default_factory=dict)
    #: Users whose count may be short: the list holds only the newest sessions.
    partial: set[str] = dataclasses.field(default_factory=set)


async def _sessions_view(
    auth: Auth, users: Sequence[UserRecord], user_filter: str, ip_filter: str
) -> SessionsView:
    """The sessions matching the filters, and counts that do not depend on them: a filter
    narrows the sessions table, never the users table."""
    view = SessionsView()
    if not auth.keeps_sessions:
        return view
    newest = await auth.list_all_sessions(limit=ADMIN_SESSION_LIMIT)
    for record in newest:
        view.counts[record.user_id] = view.counts.get(record.user_id, 0) + 1
    if len(newest) >= ADMIN_SESSION_LIMIT:
        view.partial = {user.id for user in users}
    records = newest
    if user_filter:
        try:
            target = await auth.users.get_by_name(user_filter)
        except (NotFound, InvalidInput):
            records = []
        else:
            records = await auth.list_sessions(target.id)
            records.sort(key=lambda r: r.created_at, reverse=True)
            view.counts[target.id] = len(records)  # every session of theirs: exact
            view.partial.discard(target.id)
    if ip_filter:
        records = [r for r in records if r.ip and r.ip.startswith(ip_filter)]
    view.records = records
    return view


async def _admin_page(
    request: Request,
    auth: Auth,
    identity: Identity,
    *,
    status: int = 200,
    error: str | None = None,
) -> HTMLResponse:
    context = await page_context(request, auth, identity)
    users: list[UserRecord] = await auth.users.list_users(limit=ADMIN_USER_LIMIT)
    names = {user.id: user.username for user in users}
    user_filter = request.query_params.get("user", "").strip()[:MAX_FILTER_CHARS]
    ip_filter = request.query_params.get("ip", "").strip()[:MAX_FILTER_CHARS]
    sessions = await _sessions_view(auth, users, user_filter, ip_filter)
    session_rows = [
        session_row(record, identity, names.get(record.user_id, record.user_id))
        for record in sessions.records or []
    ]
    keys_view = await _keys_view(auth)
    keys = auth.keys
    if request.query_params.get("notice") == "keys-rotated" and keys is not None:
        context["notice"] = rotation_notice(
            keys_view["stored_keys"], keys.publish_delay, context["now"]
        )
    return render(
        "admin.html",
        status=status,
        active="admin",
        error=error,
        users=users,
        session_counts=sessions.counts,
        partial_counts=sessions.partial,
        session_rows=session_rows,
        sessions_supported=sessions.records is not None,
        user_filter=user_filter,
        ip_filter=ip_filter,
        filtered=bool(user_filter or ip_filter),
        **keys_view,
        **context,
    )


@router.get("/admin")
async def admin(request: Request, identity: OptionalIdentity) -> Response:
    """Users, every active session (filterable), force logout and signing keys."""
    auth = get_auth(request)
    identity = page_identity(request, identity)
    if identity is None:
        return to_login(request, auth)
    if not identity.has_role(ADMIN_ROLE):
        return error_page(403)
    return await _admin_page(request, auth, identity)


async def _admin_action(
    request: Request, identity: Identity | None, action: AdminAction
) -> Response:
    """Run an admin form action; its errors re-render the admin page with the message."""
    posted = await accept_post(request, identity, admin=True)
    if isinstance(posted, Response):
        return posted
    try:
        notice = await action(posted)
    except (InvalidInput, UserExists, NotFound, NotSupported) as exc:
        return await _admin_page(
            request, posted.auth, posted.identity, status=exc.status, error=exc.detail
        )
    if notice == "self-logged-out":
        cookie = cookie_transport(posted.auth)
        return redirect(
            with_notice("/login", "signed-out"), cookie.logout_headers() if cookie else []
        )
    return redirect(with_notice("/admin", notice))


@router.post("/admin/users")
async def admin_create_user(request: Request, identity: OptionalIdentity) -> Response:
    """Create a user with a password and roles."""

    async def action(p: Posted) -> str:
        await p.auth.users.create_user(
            field(p.form, "username"),
            field(p.form, "password"),
            parse_roles(field(p.form, "roles")),
        )
        return "user-created"

    return await _admin_action(request, identity, action)


@router.post("/admin/users/{user_id}/disable")
async def admin_disable_user(
    request: Request, user_id: UserIdPath, identity: OptionalIdentity
) -> Response:
    """Disable an account and end every credential it holds."""

    async def action(p: Posted) -> str:
        if user_id == p.identity.user_id:
            raise InvalidInput("You cannot disable your own account.")
        await p.auth.set_disabled(user_id, True, actor=p.identity)
        return "user-disabled"

    return await _admin_action(request, identity, action)


@router.post("/admin/users/{user_id}/enable")
async def admin_enable_user(
    request: Request, user_id: UserIdPath, identity: OptionalIdentity
) -> Response:
    """Allow a disabled account to sign in again."""

    async def action(p: Posted) -> str:
        await p.auth.set_disabled(user_id, False, actor=p.identity)
        return "user-enabled"

    return await _admin_action(request, identity, action)


@router.post("/admin/users/{user_id}/roles")
async def admin_set_roles(
    request: Request, user_id: UserIdPath, identity: OptionalIdentity
) -> Response:
    """Replace a user's roles; the user's sessions end, so privileges change with a new
    session id at the next sign-in."""

    async def action(p: Posted) -> str:
        roles = parse_roles(field(p.form, "roles"))
        if user_id == p.identity.user_id and ADMIN_ROLE not in roles:
            raise InvalidInput("You cannot remove the admin role from your own account.")
        await p.auth.set_roles(user_id, roles, actor=p.identity)
        return "self-logged-out" if user_id == p.identity.user_id else "roles-changed"

    return await _admin_action(request, identity, action)


@router.post("/admin/users/{user_id}/password")
async def admin_reset_password(
    request: Request, user_id: UserIdPath, identity: OptionalIdentity
) -> Response:
    """Set a new password for a user and end their sessions."""

    async def action(p: Posted) -> str:
        await p.auth.users.reset_password(user_id, field(p.form, "password"))
        await p.auth.revoke_user_sessions(user_id, actor=p.identity)
        return "self-logged-out" if user_id == p.identity.user_id else "password-reset"

    return await _admin_action(request, identity, action)


@router.post("/admin/users/{user_id}/logout")
async def admin_force_logout(
    request: Request, user_id: UserIdPath, identity: OptionalIdentity
) -> Response:
    """End every credential of a user, on every process."""

    async def action(p: Posted) -> str:
        await p.auth.users.get(user_id)
        await p.auth.revoke_user_sessions(user_id, actor=p.identity)
        return "self-logged-out" if user_id == p.identity.user_id else "user-logged-out"

    return await _admin_action(request, identity, action)


@router.post("/admin/sessions/{session_id}/end")
async def admin_end_session(
    request: Request, session_id: SessionIdPath, identity: OptionalIdentity
) -> Response:
    """End any one session."""

    async def action(p: Posted) -> str:
        await p.auth.revoke_session(session_id, actor=p.identity)
        return "self-logged-out" if session_id == p.identity.session_id else "session-ended"

    return await _admin_action(request, identity, action)


@router.post("/admin/keys/rotate")
async def admin_rotate_keys(request: Request, identity: OptionalIdentity) -> Response:
    """Make a new active signing key; the old one keeps verifying during the overlap."""

    async def action(p: Posted) -> str:
        keys = p.auth.keys
        if keys is None:
            raise NotSupported("This server has no signing keys to rotate.")
        await keys.rotate()
        return "keys-rotated"

    return await _admin_action(request, identity, action)
