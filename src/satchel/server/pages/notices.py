"""Outcome messages: fixed keys in the query string (``?notice=...``), never text.

A link can only pick one of these, so it cannot make a page say something the server did not
write.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Final
from urllib.parse import urlencode

from starlette.requests import Request

#: Every message a redirect can ask a page to show, by key.
NOTICES: Final[Mapping[str, str]] = {
    "signed-out": "You have signed out.",
    "ended": "Your session has ended. Please sign in again.",
    "session-ended": "The session was ended.",
    "others-ended": "Every other session was ended.",
    "session-gone": "That session had already ended.",
    "password-changed": "Password changed. Your other sessions were signed out.",
    "password-changed-login": "Password changed. Please sign in with the new password.",
    "user-created": "User created.",
    "user-disabled": "User disabled; their sessions were ended.",
    "user-enabled": "User enabled.",
    "roles-changed": "Roles changed; the user's sessions were ended so the new roles apply.",
    "password-reset": "Password reset; the user's sessions were ended.",
    "user-logged-out": "Every session of the user was ended.",
    "totp-enabled": "Authenticator app set up.",
    "totp-removed": "Authenticator app removed.",
    "passkey-added": "Passkey added.",
    "passkey-renamed": "Passkey renamed.",
    "passkey-removed": "Passkey removed; it can no longer sign in.",
    "mfa-reset": "The user's second factors were removed and their sessions ended.",
    "keys-rotated": "New signing key published. It starts signing after the publish delay, "
    "once every server has loaded it; until then the current key keeps signing.",
}


def with_notice(path: str, notice: str, **params: str) -> str:
    """``path?notice=key`` (plus filters), checking the key is one the pages know."""
    assert notice in NOTICES, notice
    return f"{path}?{urlencode({'notice': notice, **params})}"


def notice_text(request: Request) -> str | None:
    """The message a redirect asked for, if it is a known one."""
    key = request.query_params.get("notice")
    return NOTICES.get(key) if key else None
