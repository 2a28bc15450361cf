"""Confirmation pages of mailed links: a GET shows a button, only its POST uses the token."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response

from satchel.errors import Throttled
from satchel.integrations.fastapi.routes import login_context
from satchel.server.account_api import accounts
from satchel.server.account_pages.forms import (
    EXPECTED,
    confirm_page,
    field,
    message,
    posted,
    problem,
    token_param,
)

router = APIRouter(include_in_schema=False)


@router.get("/verify-email")
async def verify_email_form(request: Request) -> Response:
    """The confirmation page of a verification link."""
    return confirm_page(
        request,
        title="Confirm your e-mail address",
        text="Press the button to confirm that this address belongs to your account.",
        action="/verify-email",
        button="Confirm my address",
        token=token_param(request),
    )


@router.post("/verify-email")
async def verify_email_submit(request: Request) -> Response:
    """Use the verification token up."""
    form = await posted(request)
    if isinstance(form, Response):
        return form
    try:
        await accounts(request).signup.verify(field(form, "token"), login_context(request).ip)
    except (*EXPECTED, Throttled) as exc:
        status, text, _ = problem(exc)
        response = message(request, "Address not confirmed", text, href="/login", label="Sign in")
        response.status_code = status
        return response
    return message(
        request,
        "Address confirmed",
        "Your e-mail address is confirmed. You can sign in now.",
        href="/login",
        label="Sign in",
    )


@router.get("/email/confirm")
async def email_change_form(request: Request) -> Response:
    """The confirmation page of an address-change link."""
    return confirm_page(
        request,
        title="Confirm your new address",
        text="Press the button to make this address the address of your account.",
        action="/email/confirm",
        button="Confirm the new address",
        token=token_param(request),
    )


@router.post("/email/confirm")
async def email_change_submit(request: Request) -> Response:
    """Use the address-change token up."""
    form = await posted(request)
    if isinstance(form, Response):
        return form
    try:
        await accounts(request).email.confirm(field(form, "token"), login_context(request).ip)
    except (*EXPECTED, Throttled) as exc:
        status, text, _ = problem(exc)
        response = message(request, "Address not changed", text, href="/", label="Continue")
        response.status_code = status
        return response
    return message(
        request,
        "Address changed",
        "Your account now uses the new address; your other sessions were signed out.",
        href="/",
        label="Continue",
    )
