"""``satchel invites create``: print a one-time sign-up link (``SATCHEL_SIGNUP=invite``).

The link goes to standard output (nothing else does, so it can be piped); it works once,
for ``SATCHEL_INVITE_TTL`` seconds (7 days by default), and starts with
``SATCHEL_PUBLIC_URL``. With ``--email`` the sign-up must use that address; each
``--role`` is granted to the new account. It writes one record to the store (and the
token pepper, the first time); no signing key is loaded or created.
"""

from __future__ import annotations

import secrets
import time
from typing import Annotated

import typer

from satchel.cli.app import DEFAULT_STORE, Command, StoreOption, app, err, out
from satchel.cli.help import Group
from satchel.cli.stores import target

invites_app = typer.Typer(
    help="Create one-time sign-up invitations.", no_args_is_help=True, cls=Group
)
app.add_typer(invites_app, name="invites")


@invites_app.command("create", cls=Command)
def invites_create(
    ctx: typer.Context,
    email: Annotated[
        str | None,
        typer.Option("--email", metavar="ADDRESS", help="Only this address may sign up with it."),
    ] = None,
    role: Annotated[
        list[str] | None,
        typer.Option("--role", "-r", metavar="ROLE", help="Role to grant; repeat for several."),
    ] = None,
    store: StoreOption = DEFAULT_STORE,
) -> None:
    """Print a one-time sign-up link (it starts with SATCHEL_PUBLIC_URL)."""
    where = target(ctx, store=store)

    async def main() -> str:
        from satchel.accounts.signup import new_invite
        from satchel.accounts.tokens import PEPPER_BYTES, PEPPER_NAME, TokenHasher
        from satchel.config.accounts import public_url
        from satchel.stores.onetime_backends import onetime_store_for

        settings = where.settings
        async with where.stores() as stores:
            pepper = await stores.keys.set_secret_if_absent(
                PEPPER_NAME, secrets.token_bytes(PEPPER_BYTES)
            )
            return await new_invite(
                onetime_store_for(stores.keys),
                TokenHasher(pepper),
                public_url=public_url(settings),
                ttl=settings.invite_ttl,
                now=time.time(),
                email=email,
                roles=role or [],
            )

    link = where.run(main)
    out().print(link, soft_wrap=True, markup=False, highlight=False)
    who = f" for {email}" if email else ""
    err().print(f"Invitation{who} created; the link works once.", markup=False)
