"""``satchel invites create``: print a one-time sign-up link (``SATCHEL_SIGNUP=invite``).

The link goes to standard output (nothing else does, so it can be piped); it works once,
for ``SATCHEL_INVITE_TTL`` seconds (7 days by default), and starts with
``SATCHEL_PUBLIC_URL``. With ``--email`` the sign-up must use that address; each
``--role`` is granted to the new account.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from typing import Annotated, Any, NoReturn

import typer
from rich.console import Console

from satchel.audit import safe_text
from satchel.errors import ConfigurationError, InvalidInput, SatchelError

EXIT_ERROR = 1
EXIT_USAGE = 2

invites_app = typer.Typer(help="Create sign-up invitations.", no_args_is_help=True)


class _NoMail:
    """Invitations are printed, never mailed."""

    def send(self, kind: str, to: str, context: Mapping[str, Any]) -> bool:
        return False


def _fail(message: str, code: int) -> NoReturn:
    Console(stderr=True, highlight=False).print(
        f"[bold red]Error:[/] {safe_text(message, 500)}", markup=True, soft_wrap=True
    )
    raise typer.Exit(code)


async def create_invite(
    store: str | None, email: str | None, roles: list[str], public_url: str | None
) -> str:
    """Open the store, issue the invitation and return its link."""
    from satchel.config.accounts import build_accounts
    from satchel.config.build import build_auth
    from satchel.config.settings import Settings

    overrides = {"store": store, "public_url": public_url}
    settings = Settings(**{k: v for k, v in overrides.items() if v is not None})
    if settings.store.lower().startswith("memory:"):
        raise ConfigurationError(
            "memory:// lives inside one server process; an invitation made here would "
            "not exist there. Use the server's sqlite:///, redis:// or postgresql:// store."
        )
    auth = await build_auth(settings)
    try:
        service = await build_accounts(auth, settings, outbox=_NoMail())
        try:
            return await service.signup.create_invite(email, roles)
        finally:
            await service.close()
    finally:
        await auth.close()


@invites_app.command("create")
def invites_create(
    email: Annotated[
        str | None,
        typer.Option("--email", metavar="ADDRESS", help="Only this address may sign up with it."),
    ] = None,
    role: Annotated[
        list[str] | None,
        typer.Option("--role", "-r", metavar="ROLE", help="Role to grant; repeat for several."),
    ] = None,
    store: Annotated[
        str | None,
        typer.Option(
            "--store",
            envvar="SATCHEL_STORE",
            metavar="URL",
            help="The server's store: sqlite:///path, redis://..., postgresql://... "
            "[default: sqlite:///satchel.db]",
            show_default=False,
        ),
    ] = None,
    public_url: Annotated[
        str | None,
        typer.Option(
            "--public-url",
            envvar="SATCHEL_PUBLIC_URL",
            metavar="URL",
            help="Where users reach the server [default: http://HOST:PORT]",
            show_default=False,
        ),
    ] = None,
) -> None:
    """Print a one-time sign-up link."""
    try:
        link = asyncio.run(create_invite(store, email, role or [], public_url))
    except (ConfigurationError, InvalidInput) as exc:
        _fail(exc.detail, EXIT_USAGE)
    except SatchelError as exc:
        _fail(exc.detail, EXIT_ERROR)
    except OSError as exc:
        _fail(f"{type(exc).__name__}: {exc.strerror or 'failed'}", EXIT_ERROR)
    typer.echo(link)
    who = f" for {email}" if email else ""
    Console(stderr=True, highlight=False).print(
        f"Invitation{who} created; the link works once.", markup=False
    )
