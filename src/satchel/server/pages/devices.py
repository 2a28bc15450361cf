"""My devices: the caller's sessions, and ending one or all the others."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

from fastapi import APIRouter, Path, Response
from starlette.requests import Request

from satchel.auth import Auth
from satchel.dbsc.record import BoundKey, bound_key
from satchel.errors import NotFound
from satchel.identity import Identity
from satchel.integrations.fastapi import OptionalIdentity, get_auth
from satchel.integrations.refresh import cookie_transport
from satchel.server.pages.access import page_identity, to_login
from satchel.server.pages.forms import accept_post, page_context
from satchel.server.pages.notices import with_notice
from satchel.server.pages.render import redirect, render
from satchel.server.useragent import Device, describe
from satchel.stores.base import SessionRecord
from satchel.strategies.session_policy import is_remembered

SessionIdPath = Annotated[str, Path(min_length=1, max_length=256)]

router = APIRouter(include_in_schema=False)


@dataclass(frozen=True, slots=True)
class SessionRow:
    """A session as the device lists show it."""

    record: SessionRecord
    device: Device
    current: bool
    remembered: bool
    username: str
    #: The DBSC device key the session is bound to (docs/dbsc.md), if any.
    device_key: BoundKey | None = None


def session_row(record: SessionRecord, viewer: Identity, username: str = "") -> SessionRow:
    """The row for ``record``; ``current`` when it is the viewer's own session."""
    return SessionRow(
        record=record,
        device=describe(record.user_agent),
        current=record.id == viewer.session_id,
        remembered=is_remembered(record),
        username=username,
        device_key=bound_key(record),
    )


async def current_record(auth: Auth, identity: Identity) -> SessionRecord | None:
    """The stored record of the caller's session (None for strategies that keep none)."""
    if not auth.keeps_sessions or identity.session_id is None:
        return None
    records = await auth.list_sessions(identity.user_id)
    return next((r for r in records if r.id == identity.session_id), None)


@router.get("/devices")
async def devices(request: Request, identity: OptionalIdentity) -> Response:
    """The caller's sessions: device, IP, created, last seen, this-device marker."""
    auth = get_auth(request)
    identity = page_identity(request, identity)
    if identity is None:
        return to_login(request, auth)
    context = await page_context(request, auth, identity)
    records: list[SessionRecord] | None = None
    if auth.keeps_sessions:
        records = await auth.list_sessions(identity.user_id)
    rows = [session_row(record, identity) for record in records or []]
    # This device first, then the most recently active.
    rows.sort(key=lambda row: (not row.current, -row.record.last_seen_at))
    return render(
        "devices.html",
        active="devices",
        rows=rows,
        supported=records is not None,
        others=sum(1 for row in rows if not row.current),
        **context,
    )


@router.post("/devices/end-others")
async def end_other_devices(request: Request, identity: OptionalIdentity) -> Response:
    """End every session of the caller except this one."""
    posted = await accept_post(request, identity)
    if isinstance(posted, Response):
        return posted
    await posted.auth.revoke_other_sessions(posted.identity)
    return redirect(with_notice("/devices", "others-ended"))


@router.post("/devices/{session_id}/end")
async def end_device(
    request: Request, session_id: SessionIdPath, identity: OptionalIdentity
) -> Response:
    """End one of the caller's sessions (ending this one signs out)."""
    posted = await accept_post(request, identity)
    if isinstance(posted, Response):
        return posted
    auth, me = posted.auth, posted.identity
    try:
        await auth.revoke_session(session_id, user_id=me.user_id, actor=me)
    except NotFound:
        return redirect(with_notice("/devices", "session-gone"))
    if session_id == me.session_id:
        cookie = cookie_transport(auth)
        return redirect(
            with_notice("/login", "signed-out"), cookie.logout_headers() if cookie else []
        )
    return redirect(with_notice("/devices", "session-ended"))
