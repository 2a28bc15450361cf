"""The account pages: sign up, confirm an address, forgot / reset password, sign in by link
or code, first administrator, change the address. Plain forms, no JavaScript.

A link from a mail opens a confirmation page; only that page's POST uses the token up, so a
mail scanner that fetches every link (Outlook Safe Links and the like) consumes nothing.
Every form carries a CSRF token bound to the pre-session cookie (or, signed in, to the
session), checked before anything else. One module per group of pages; :mod:`~.forms`
holds what they share.
"""

from __future__ import annotations

from fastapi import APIRouter

from satchel.server.account_pages import confirm, email, recovery, signup

router = APIRouter(include_in_schema=False)
for _module in (signup, confirm, recovery, email):
    router.include_router(_module.router)

__all__ = ["router"]
