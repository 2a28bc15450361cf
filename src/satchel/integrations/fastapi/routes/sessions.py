"""The caller's sessions: list them, end one, end all the others."""

from __future__ import annotations

from typing import Final

from fastapi import APIRouter, Request, Response

from satchel.errors import NotFound
from satchel.integrations.fastapi.deps import CurrentIdentity, get_auth
from satchel.integrations.fastapi.openapi import error_responses
from satchel.integrations.fastapi.routes.csrf import CSRFChecked
from satchel.integrations.fastapi.routes.models import RevokedOut, SessionOut
from satchel.integrations.fastapi.routes.requests import NO_STORE, apply_headers
from satchel.integrations.http_api.routes import session_view
from satchel.stores.base import SessionRecord

#: Longer ids are not looked up: no session has one.
MAX_SESSION_ID: Final = 256

router = APIRouter()


def session_out(record: SessionRecord, current: str | None) -> SessionOut:
    """``record`` as the API shows it; ``current`` marks the caller's own session."""
    return SessionOut.model_validate(session_view(record, current))


@router.get(
    "/auth/sessions",
    response_model=list[SessionOut],
    responses=error_responses(400, 401, 503),
    summary="The caller's live sessions",
)
async def list_sessions(
    request: Request, identity: CurrentIdentity, response: Response
) -> list[SessionOut]:
    """Every live session of the caller, oldest first; ``current`` marks this one."""
    records = await get_auth(request).list_sessions(identity.user_id)
    response.headers["Cache-Control"] = "no-store"
    return [session_out(record, identity.session_id) for record in records]


# Declared before DELETE /auth/sessions/{session_id}, whose path also matches this one: a
# wrong method here then answers 405 with ``Allow: POST``, the methods of this resource.
@router.post(
    "/auth/sessions/revoke-others",
    dependencies=[CSRFChecked],
    response_model=RevokedOut,
    responses=error_responses(400, 401, 403, 503),
    summary="End every other session of the caller",
)
async def revoke_others(request: Request, identity: CurrentIdentity) -> RevokedOut:
    """Keeps the current session; returns how many others ended."""
    ended = await get_auth(request).revoke_other_sessions(identity)
    return RevokedOut(revoked=len(ended))


@router.delete(
    "/auth/sessions/{session_id}",
    status_code=204,
    dependencies=[CSRFChecked],
    responses=error_responses(400, 401, 403, 404, 503),
    summary="End one of the caller's sessions",
)
async def revoke_session(request: Request, identity: CurrentIdentity, session_id: str) -> Response:
    """404 unless the session is the caller's own (an id no session could have included);
    ending the current one also clears the cookie."""
    auth = get_auth(request)
    if auth.keeps_sessions and len(session_id) > MAX_SESSION_ID:
        raise NotFound("No such session.")  # the answer for any unknown id
    await auth.revoke_session(session_id, user_id=identity.user_id, actor=identity)
    response = Response(status_code=204)
    if session_id == identity.session_id and identity.transport == "cookie":
        apply_headers(response, auth.logout_headers("cookie"))
    response.headers.update(NO_STORE)
    return response
