"""The security page: a user's passkeys, authenticator app and recovery codes; and an
administrator's reset of a user's factors.

Every change needs a fresh sign-in (``SATCHEL_FRESH_AGE``): a stale session is sent through
``/reauthenticate`` and comes back here. Passkeys are added by the bundled script (the
WebAuthn ceremony needs the browser's API); everything else is a plain form post.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Annotated, Any

from fastapi import APIRouter, Path, Response
from starlette.requests import Request

from satchel.accounts.mfa import totp
from satchel.accounts.mfa.errors import (
    FactorConflict,
    InvalidCode,
    MfaDisabled,
    ReauthenticationRequired,
)
from satchel.accounts.mfa.policy import MfaMode, is_fresh
from satchel.errors import InvalidInput, NotFound
from satchel.identity import Identity
from satchel.integrations.fastapi import OptionalIdentity, get_auth
from satchel.server.pages.access import page_identity, to_login
from satchel.server.pages.forms import Posted, accept_post, field, page_context
from satchel.server.pages.notices import with_notice
from satchel.server.pages.render import error_page, redirect, render
from satchel.server.pages.second_step import service, to_reauth, with_script

PasskeyIdPath = Annotated[str, Path(min_length=1, max_length=1400, pattern=r"^[A-Za-z0-9_-]+$")]
UserIdPath = Annotated[str, Path(min_length=1, max_length=128)]
Action = Callable[[Posted], Awaitable[Response]]

router = APIRouter(include_in_schema=False)


async def _security_page(
    request: Request, identity: Identity, *, status: int = 200, error: str | None = None
) -> Response:
    auth = get_auth(request)
    mfa = service(auth)
    factors = await mfa.docs.read(identity.user_id)
    context = await page_context(request, auth, identity)
    page = render(
        "security.html",
        status=status,
        active="security",
        error=error,
        passkeys=factors.passkeys,
        totp=factors.totp is not None,
        recovery_codes=len(factors.recovery),
        mfa_enabled=mfa.config.mode is not MfaMode.OFF,
        fresh=is_fresh(identity.auth_time, auth.clock(), mfa.config.fresh_age),
        fresh_age=mfa.config.fresh_age,
        **context,
    )
    return with_script(page)


@router.get("/security")
async def security(request: Request, identity: OptionalIdentity) -> Response:
    """The caller's factors."""
    auth = get_auth(request)
    me = page_identity(request, identity)
    if me is None:
        return to_login(request, auth)
    return await _security_page(request, me)


async def _act(request: Request, identity: Identity | None, action: Action) -> Response:
    """A form post of the security page; a stale session goes to reauthenticate first."""
    posted = await accept_post(request, identity)
    if isinstance(posted, Response):
        return posted
    try:
        return await action(posted)
    except ReauthenticationRequired:
        return to_reauth("/security")
    except (InvalidInput, NotFound, FactorConflict, MfaDisabled, InvalidCode) as exc:
        return await _security_page(request, posted.identity, status=exc.status, error=exc.detail)


async def _setup_page(p: Posted, secret: str, error: str | None = None) -> Response:
    mfa = service(p.auth)
    uri = totp.provisioning_uri(secret, p.identity.username, mfa.config.issuer)
    context = await page_context_for(p)
    return render(
        "totp_setup.html",
        status=400 if error else 200,
        active="security",
        error=error,
        mfa_token=None,
        secret=secret,
        qr_svg=totp.qr_svg(uri),
        confirm_action="/security/totp/confirm",
        next_path="/security",
        **context,
    )


async def page_context_for(p: Posted) -> dict[str, Any]:
    """The signed-in page context of a post's caller."""
    return {
        "identity": p.identity,
        "csrf_token": p.auth.csrf.token_for(p.identity) if p.auth.csrf else None,
        "now": p.auth.clock(),
    }


@router.post("/security/totp")
async def totp_start(request: Request, identity: OptionalIdentity) -> Response:
    """A new authenticator-app key and its QR code (confirmed on the next step)."""

    async def action(p: Posted) -> Response:
        setup = await service(p.auth).start_totp(p.identity)
        return await _setup_page(p, setup.secret)

    return await _act(request, identity, action)


@router.post("/security/totp/confirm")
async def totp_confirm(request: Request, identity: OptionalIdentity) -> Response:
    """Activate the app with a code; recovery codes are shown the first time."""

    async def action(p: Posted) -> Response:
        try:
            codes = await service(p.auth).confirm_totp(p.identity, field(p.form, "code"))
        except InvalidCode:
            return await _setup_page(p, field(p.form, "secret"), "That code is not valid.")
        if codes is None:
            return redirect(with_notice("/security", "totp-enabled"))
        return render(
            "recovery_codes.html", codes=codes, next_path="/security", **await page_context_for(p)
        )

    return await _act(request, identity, action)


@router.post("/security/totp/remove")
async def totp_remove(request: Request, identity: OptionalIdentity) -> Response:
    """Remove the authenticator app."""

    async def action(p: Posted) -> Response:
        await service(p.auth).remove_totp(p.identity)
        return redirect(with_notice("/security", "totp-removed"))

    return await _act(request, identity, action)


@router.post("/security/recovery-codes")
async def recovery_codes(request: Request, identity: OptionalIdentity) -> Response:
    """Ten new recovery codes, shown once; the old ones stop working."""

    async def action(p: Posted) -> Response:
        codes = await service(p.auth).new_recovery_codes(p.identity)
        return render(
            "recovery_codes.html", codes=codes, next_path="/security", **await page_context_for(p)
        )

    return await _act(request, identity, action)


@router.post("/security/passkeys/{passkey_id}/rename")
async def passkey_rename(
    request: Request, passkey_id: PasskeyIdPath, identity: OptionalIdentity
) -> Response:
    """Give a passkey a new name."""

    async def action(p: Posted) -> Response:
        await service(p.auth).passkeys.rename(p.identity, passkey_id, field(p.form, "name"))
        return redirect(with_notice("/security", "passkey-renamed"))

    return await _act(request, identity, action)


@router.post("/security/passkeys/{passkey_id}/remove")
async def passkey_remove(
    request: Request, passkey_id: PasskeyIdPath, identity: OptionalIdentity
) -> Response:
    """Remove a passkey: it cannot sign in from then on."""

    async def action(p: Posted) -> Response:
        await service(p.auth).passkeys.remove(p.identity, passkey_id)
        return redirect(with_notice("/security", "passkey-removed"))

    return await _act(request, identity, action)


@router.post("/admin/users/{user_id}/mfa/reset")
async def admin_reset_factors(
    request: Request, user_id: UserIdPath, identity: OptionalIdentity
) -> Response:
    """An administrator removes every factor of a user (lost phone, or a factor an
    attacker added) and ends the user's sessions; audited with the admin as actor."""
    posted = await accept_post(request, identity, admin=True)
    if isinstance(posted, Response):
        return posted
    try:
        await service(posted.auth).reset(user_id, actor=posted.identity)
    except ReauthenticationRequired:
        return to_reauth("/admin")
    except NotFound:
        return error_page(404)
    if user_id == posted.identity.user_id:
        return redirect(with_notice("/login", "signed-out"))
    return redirect(with_notice("/admin", "mfa-reset"))
