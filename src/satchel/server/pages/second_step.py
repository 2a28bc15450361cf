"""The second step of a sign-in in the browser, the enrolment walk-through, and step-up.

A password accepted while a second factor is due renders the second-step page instead of
signing in (:func:`second_step_page`, called by the sign-in post): a code, a recovery code
or a passkey finishes it; an account that must enrol sets up an authenticator app (or a
passkey) first and is signed in at the end, with its recovery codes shown once. Every form
here carries the login-form CSRF token and the ``mfa_token`` of the step.

``/reauthenticate`` renews the current session's ``auth_time`` (password, code or passkey)
and returns to ``next``: where a stale session is sent before a sensitive action.
"""

from __future__ import annotations

from typing import Final
from urllib.parse import urlencode

from fastapi import APIRouter, Response
from fastapi.responses import RedirectResponse
from starlette.requests import Request

from satchel.accounts.mfa import totp
from satchel.accounts.mfa.errors import InvalidCode, InvalidMfaToken, MfaRequired
from satchel.accounts.mfa.policy import methods_of
from satchel.accounts.mfa.service import MfaService
from satchel.auth import Auth, LoginResult
from satchel.dbsc.enforce import offer_binding
from satchel.errors import CSRFError, InvalidLogin, NotSupported, SatchelError, Throttled
from satchel.identity import Identity
from satchel.integrations.fastapi import OptionalIdentity, get_auth
from satchel.integrations.fastapi.routes import login_context
from satchel.integrations.refresh import safe_next
from satchel.server.pages.access import csrf_for, page_identity, to_login
from satchel.server.pages.formatting import retry_text
from satchel.server.pages.forms import accept_post, check_form, field, page_context, read_form
from satchel.server.pages.render import redirect, render

#: The pages with a passkey button may run the one bundled script, and fetch the API.
SCRIPT_CSP: Final = (
    "default-src 'none'; style-src 'self'; img-src 'self'; script-src 'self'; "
    "connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
)

router = APIRouter(include_in_schema=False)


def with_script(response: Response) -> Response:
    """Allow the bundled passkey script on ``response``."""
    response.headers["Content-Security-Policy"] = SCRIPT_CSP
    return response


def service(auth: Auth) -> MfaService:
    """The MFA service of the pages' Auth."""
    if auth.mfa is None:
        raise NotSupported("Second factors are not set up on this server.")
    return auth.mfa


def reauth_url(target: str) -> str:
    """Where a stale session goes before ``target``."""
    return "/reauthenticate?" + urlencode({"next": safe_next(target)})


def to_reauth(target: str) -> RedirectResponse:
    """Send a stale session to confirm it is the user, then on to ``target``."""
    return redirect(reauth_url(target))


async def second_step_page(
    request: Request,
    auth: Auth,
    exc: MfaRequired,
    next_path: str,
    *,
    status: int = 200,
    error: str | None = None,
) -> Response:
    """The second-step (or enrolment) page of a login that answered ``mfa_required``."""
    token, headers = csrf_for(auth).login_form(request.scope.get("headers") or ())
    page = render(
        "login_mfa.html",
        status=status,
        headers=headers,
        csrf_token=token,
        error=error,
        mfa_token=exc.mfa_token,
        methods=list(exc.methods),
        enroll=exc.enroll,
        next_path=next_path,
    )
    return with_script(page)


async def _pending_form(request: Request) -> tuple[Auth, str, str, dict[str, str]] | Response:
    """A second-step form post: its CSRF check (login binding), token and fields."""
    auth = get_auth(request)
    csrf = csrf_for(auth)
    form = await read_form(request)
    target = safe_next(field(form, "next") or "/")
    try:
        check_form(csrf, request, form, csrf.login_binding(request.scope.get("headers") or ()))
    except CSRFError:
        return redirect("/login")
    values = {k: field(form, k) for k in ("code", "recovery_code", "secret")}
    return auth, field(form, "mfa_token"), target, values


async def _signed_in(auth: Auth, result: LoginResult, target: str) -> Response:
    offer = await offer_binding(auth.dbsc, result.identity)  # DBSC, docs/dbsc.md
    return redirect(target, [*auth.login_headers(result, "cookie"), *offer])


async def _again(
    request: Request, auth: Auth, token: str, target: str, error: str, status: int
) -> Response:
    """The second-step page again (the token is still good), with ``error``."""
    found = await service(auth).pending(token, "login")
    enrolled = await service(auth).enrolled(found.user_id)
    exc = MfaRequired(token, methods_of(enrolled))
    return await second_step_page(request, auth, exc, target, status=status, error=error)


@router.post("/login/mfa")
async def second_step_submit(request: Request) -> Response:
    """Finish a sign-in with a code or a recovery code."""
    posted = await _pending_form(request)
    if isinstance(posted, Response):
        return posted
    auth, token, target, values = posted
    ctx = login_context(request)
    code = values["code"] or None
    recovery = None if code else values["recovery_code"] or None
    try:
        finished = await service(auth).verify(token, ctx, code=code, recovery_code=recovery)
    except InvalidMfaToken:
        return redirect("/login?" + urlencode({"next": target}) if target != "/" else "/login")
    except InvalidCode:
        return await _again(request, auth, token, target, "That code is not valid.", 401)
    except Throttled as exc:
        wait = retry_text(exc.retry_after)
        return await _again(request, auth, token, target, f"Too many attempts. Wait {wait}.", 429)
    return await _signed_in(auth, finished.result, target)


@router.post("/login/enroll")
async def enroll_start(request: Request) -> Response:
    """Enrolment at sign-in: a new authenticator-app key and its QR code."""
    posted = await _pending_form(request)
    if isinstance(posted, Response):
        return posted
    auth, token, target, _ = posted
    try:
        setup = await service(auth).enroll_totp(token)
    except InvalidMfaToken:
        return redirect("/login")
    return await _setup_page(request, auth, token, target, setup.secret, setup.uri)


async def _setup_page(
    request: Request,
    auth: Auth,
    token: str,
    target: str,
    secret: str,
    uri: str,
    error: str | None = None,
) -> Response:
    csrf_token, headers = csrf_for(auth).login_form(request.scope.get("headers") or ())
    return render(
        "totp_setup.html",
        status=400 if error else 200,
        headers=headers,
        csrf_token=csrf_token,
        error=error,
        mfa_token=token,
        secret=secret,
        qr_svg=totp.qr_svg(uri),
        confirm_action="/login/enroll/confirm",
        next_path=target,
    )


@router.post("/login/enroll/confirm")
async def enroll_confirm(request: Request) -> Response:
    """Confirm the app with a code: signed in, and the recovery codes shown once."""
    posted = await _pending_form(request)
    if isinstance(posted, Response):
        return posted
    auth, token, target, values = posted
    mfa = service(auth)
    try:
        finished = await mfa.finish_enrollment(token, values["code"], login_context(request))
    except InvalidMfaToken:
        return redirect("/login")
    except (InvalidCode, Throttled):
        secret = values["secret"]
        found = await mfa.pending(token, "enroll")
        account = (await auth.users.get(found.user_id)).username
        uri = totp.provisioning_uri(secret, account, mfa.config.issuer) if secret else ""
        return await _setup_page(
            request, auth, token, target, secret, uri, "That code is not valid. Try again."
        )
    offer = await offer_binding(auth.dbsc, finished.result.identity)
    headers = [*auth.login_headers(finished.result, "cookie"), *offer]
    return render(
        "recovery_codes.html",
        headers=headers,
        identity=finished.result.identity.with_transport("cookie"),
        csrf_token=csrf_for(auth).token_for(finished.result.identity),
        codes=finished.recovery_codes or [],
        next_path=target,
    )


# --- step-up ---------------------------------------------------------------------------------


async def _reauth_page(
    request: Request, auth: Auth, identity: Identity, target: str, error: str | None = None
) -> Response:
    enrolled = await service(auth).enrolled(identity.user_id)
    context = await page_context(request, auth, identity)
    page = render(
        "reauthenticate.html",
        status=401 if error else 200,
        error=error,
        has_totp=enrolled.totp,
        has_passkeys=enrolled.passkeys > 0,
        next_path=target,
        **context,
    )
    return with_script(page)


@router.get("/reauthenticate")
async def reauth_form(request: Request, identity: OptionalIdentity) -> Response:
    """Confirm it is you: password, code or passkey; then back to ``next``."""
    auth = get_auth(request)
    me = page_identity(request, identity)
    if me is None:
        return to_login(request, auth)
    return await _reauth_page(request, auth, me, safe_next(request.query_params.get("next")))


@router.post("/reauthenticate")
async def reauth_submit(request: Request, identity: OptionalIdentity) -> Response:
    """Renew this session's sign-in time and go on to ``next``."""
    posted = await accept_post(request, identity)
    if isinstance(posted, Response):
        return posted
    auth, me, form = posted.auth, posted.identity, posted.form
    target = safe_next(field(form, "next") or "/")
    password, code = field(form, "password"), field(form, "code")
    try:
        renewed, issued = await service(auth).reauthenticate(
            me,
            login_context(request),
            password=password if password else None,
            code=None if password else code,
        )
    except (InvalidLogin, InvalidCode):
        return await _reauth_page(request, auth, me, target, "That did not match. Try again.")
    except Throttled as exc:
        wait = retry_text(exc.retry_after)
        return await _reauth_page(request, auth, me, target, f"Too many attempts. Wait {wait}.")
    except SatchelError:
        return to_login(request, auth)
    headers = auth.login_headers(LoginResult(renewed, issued), "cookie") if issued else []
    return redirect(target, headers)


__all__ = ["router", "second_step_page", "to_reauth", "with_script"]
