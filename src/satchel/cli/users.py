"""``satchel users``: create, list, disable and enable accounts."""

from __future__ import annotations

import sys
from typing import Annotated

import typer

from satchel.audit import safe_text
from satchel.cli.app import (
    DEFAULT_STORE,
    DEFAULT_STRATEGY,
    EXIT_USAGE,
    Command,
    StoreOption,
    StrategyOption,
    fail,
    out,
    table,
    users_app,
    when,
)
from satchel.cli.stores import target

NameArgument = Annotated[str, typer.Argument(help="Username.", metavar="NAME", show_default=False)]


def read_password_stdin() -> str:
    """The first line of standard input, byte-exact but for its line ending."""
    line = sys.stdin.readline()
    if line.endswith("\n"):
        line = line[:-1]
        if line.endswith("\r"):
            line = line[:-1]
    if not line:
        fail("No password on standard input.", EXIT_USAGE)
    return line


@users_app.command("add", cls=Command)
def users_add(
    ctx: typer.Context,
    name: NameArgument,
    role: Annotated[
        list[str] | None,
        typer.Option("--role", "-r", metavar="ROLE", help="Role to grant; repeat for several."),
    ] = None,
    password_stdin: Annotated[
        bool,
        typer.Option("--password-stdin", help="Read the password from the first line of stdin."),
    ] = False,
    store: StoreOption = DEFAULT_STORE,
) -> None:
    """Create a user (the password is prompted for twice unless --password-stdin)."""
    where = target(ctx, store=store)

    async def main() -> None:
        async with where.users() as users:
            # Asked only once the store opened, so a bad --store fails before any typing.
            if password_stdin:
                password = read_password_stdin()
            else:
                password = typer.prompt("Password", hide_input=True, confirmation_prompt=True)
            user = await users.create_user(name, password, role or ())
        roles = ", ".join(user.roles) or "no roles"
        out().print(f"Created user {safe_text(user.username)} (id {user.id}; {roles}).")

    where.run(main)


@users_app.command("list", cls=Command)
def users_list(
    ctx: typer.Context,
    limit: Annotated[int, typer.Option(metavar="N", help="Show at most this many users.")] = 100,
    offset: Annotated[
        int, typer.Option(metavar="N", help="Skip this many users first.", min=0)
    ] = 0,
    store: StoreOption = DEFAULT_STORE,
) -> None:
    """List users, ordered by username."""
    where = target(ctx, store=store)

    async def main() -> None:
        async with where.users() as service:
            users = await service.list_users(limit=limit, offset=offset)
        listing = table("Users", ["username", "id", "roles", "status", "created"])
        for user in users:
            listing.add_row(
                safe_text(user.username),
                user.id,
                ", ".join(user.roles),
                "disabled" if user.disabled else "active",
                when(user.created_at),
            )
        out().print(listing if users else "No users.")

    where.run(main)


def _set_disabled(ctx: typer.Context, name: str, disabled: bool, store: str, strategy: str) -> None:
    where = target(ctx, store=store, strategy=strategy, sessions=True)

    async def main() -> None:
        async with where.auth() as auth:
            user = await auth.users.get_by_name(name)
            # Through the facade: the strategy ends live credentials and publishes the
            # revocation to running servers, and the change is audited like the admin page's.
            await auth.set_disabled(user.id, disabled)
        state = "Disabled" if disabled else "Enabled"
        note = "; existing credentials revoked" if disabled else ""
        out().print(f"{state} user {safe_text(user.username)}{note}.")

    where.run(main)


@users_app.command("disable", cls=Command)
def users_disable(
    ctx: typer.Context,
    name: NameArgument,
    store: StoreOption = DEFAULT_STORE,
    strategy: StrategyOption = DEFAULT_STRATEGY,
) -> None:
    """Disable a user and revoke every credential issued to them."""
    _set_disabled(ctx, name, True, store, strategy)


@users_app.command("enable", cls=Command)
def users_enable(
    ctx: typer.Context,
    name: NameArgument,
    store: StoreOption = DEFAULT_STORE,
    strategy: StrategyOption = DEFAULT_STRATEGY,
) -> None:
    """Enable a disabled user again (revoked credentials stay revoked)."""
    _set_disabled(ctx, name, False, store, strategy)
