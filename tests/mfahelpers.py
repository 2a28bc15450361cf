"""Shortcuts of the second-factor tests: same-origin posts, TOTP enrolment, codes."""

from __future__ import annotations

from typing import Any

import httpx
import pyotp

from apps import RunningApp


def same_origin(app: RunningApp) -> dict[str, str]:
    return {"origin": app.base_url, "sec-fetch-site": "same-origin"}


async def post(
    app: RunningApp, path: str, body: dict[str, Any] | None = None, **kw: Any
) -> httpx.Response:
    client: httpx.AsyncClient = kw.pop("client", None) or app.client
    headers = {**same_origin(app), **kw.pop("headers", {})}
    return await client.post(path, json=body or {}, headers=headers, **kw)


def code(app: RunningApp, secret: str, offset: float = 0.0) -> str:
    """The TOTP code of ``secret`` at the app's clock (plus ``offset`` seconds)."""
    return str(pyotp.TOTP(secret).at(app.clock() + offset))


async def enroll_totp(
    app: RunningApp, client: httpx.AsyncClient | None = None
) -> tuple[str, list[str]]:
    """Set up and confirm a TOTP for the signed-in client: the secret and recovery codes."""
    setup = await post(app, "/auth/mfa/totp/setup", client=client)
    assert setup.status_code == 200, setup.text
    secret = setup.json()["secret"]
    confirm = await post(app, "/auth/mfa/totp/confirm", {"code": code(app, secret)}, client=client)
    assert confirm.status_code == 200, confirm.text
    codes = confirm.json()["recovery_codes"]
    app.clock.advance(30)  # the confirming code's step is used up
    return secret, codes


async def password_step(
    app: RunningApp, username: str = "alice", client: httpx.AsyncClient | None = None
) -> dict[str, Any]:
    """The answer of a cookie login that needs a second factor."""
    response = await post(
        app, "/auth/login", {"username": username, "password": app.password}, client=client
    )
    assert response.status_code == 403, response.text
    body: dict[str, Any] = response.json()
    assert body["error"] == "mfa_required" and body["mfa_required"] is True
    return body
