"""``satchel sessions``: list, revoke and purge server-side sessions."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Annotated

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
    sessions_app,
    table,
    when,
)
from satchel.cli.stores import target
from satchel.clock import system_clock

if TYPE_CHECKING:
    from rich.table import Table

    from satchel.stores.base import SessionRecord


def device(agent: str | None) -> str:
    """The session's client as the pages name it ("Chrome 140 on Linux"), ``-`` if unknown."""
    if not agent:
        return "-"
    from satchel.server.useragent import describe

    return safe_text(describe(agent).label, 60)


def session_table(records: Sequence[SessionRecord], names: dict[str, str]) -> Table:
    """Sessions with their user's name, times, address and device."""
    listing = table("Sessions", ["id", "user", "last seen", "expires", "ip", "device"])
    for record in records:
        listing.add_row(
            record.id,
            safe_text(names.get(record.user_id, record.user_id)),
            when(record.last_seen_at),
            when(record.expires_at()),
            safe_text(record.ip or "-"),
            device(record.user_agent),
        )
    return listing


@sessions_app.command("list", cls=Command)
def sessions_list(
    ctx: typer.Context,
    user: Annotated[
        str | None,
        typer.Option("--user", "-u", metavar="NAME", help="Only this user's sessions."),
    ] = None,
    limit: Annotated[
        int, typer.Option(metavar="N", help="Show at most this many sessions (1 to 1000).")
    ] = 100,
    store: StoreOption = DEFAULT_STORE,
    strategy: StrategyOption = DEFAULT_STRATEGY,
) -> None:
    """List live sessions, of one user or of everyone (newest first)."""
    if not 1 <= limit <= 1000:
        fail("--limit: must be between 1 and 1000.", EXIT_USAGE)
    where = target(ctx, store=store, strategy=strategy, sessions=True)

    async def main() -> None:
        async with where.auth() as auth:
            now = system_clock()
            if user is not None:
                account = await auth.users.get_by_name(user)
                records = await auth.list_sessions(account.id)
                names = {account.id: account.username}
            else:
                records = await auth.list_all_sessions(limit=limit)
                names = {}
                for user_id in {r.user_id for r in records}:
                    found = await auth.users.store.get_user(user_id)
                    if found is not None:
                        names[user_id] = found.username
            live = [r for r in records if r.expires_at() > now][:limit]
        out().print(session_table(live, names) if live else "No sessions.")

    where.run(main)


@sessions_app.command("revoke", cls=Command)
def sessions_revoke(
    ctx: typer.Context,
    session_id: Annotated[
        str | None,
        typer.Argument(help="Session id to end.", metavar="SESSION_ID", show_default=False),
    ] = None,
    user: Annotated[
        str | None,
        typer.Option(
            "--user", "-u", metavar="NAME", help="End every credential of this user instead."
        ),
    ] = None,
    store: StoreOption = DEFAULT_STORE,
    strategy: StrategyOption = DEFAULT_STRATEGY,
) -> None:
    """End one session by id, or every credential of a user with --user."""
    if (session_id is None) == (user is None):
        fail("Give either a session id or --user NAME.", EXIT_USAGE)
    where = target(ctx, store=store, strategy=strategy, sessions=True)

    async def main() -> None:
        async with where.auth() as auth:
            if user is not None:
                account = await auth.users.get_by_name(user)
                await auth.revoke_user_sessions(account.id)
                message = f"Revoked every credential of {safe_text(account.username)}."
            else:
                assert session_id is not None
                await auth.revoke_session(session_id)
                message = f"Revoked session {safe_text(session_id, 80)}."
        out().print(message)

    where.run(main)


@sessions_app.command("purge", cls=Command)
def sessions_purge(ctx: typer.Context, store: StoreOption = DEFAULT_STORE) -> None:
    """Delete expired sessions from the store."""
    where = target(ctx, store=store, sessions=True)

    async def main() -> None:
        async with where.stores() as stores:
            count = await stores.sessions.purge_expired(system_clock())
        out().print(f"Purged {count} expired session{'s' if count != 1 else ''}.")

    where.run(main)
