"""``satchel users import FILE``: load accounts moved from another system, pre-hashed.

The file holds one JSON object per line (see :mod:`satchel.accounts.user_import` and
docs/passwords.md). Bad lines are listed with their number and reason on standard error
and the others load. Exit status 0 when every line loaded, 1 when some were refused (or
the store failed part-way), 2 for bad arguments, a bad store URL or ``memory://``.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Final

import typer
from rich.console import Console
from rich.progress import BarColumn, Progress, TaskProgressColumn, TextColumn, TimeElapsedColumn

from satchel.accounts.user_import import (
    DEFAULT_BATCH_SIZE,
    MAX_BATCH_SIZE,
    ImportReport,
    UserImporter,
)
from satchel.cli.app import DEFAULT_STORE, EXIT_ERROR, Command, StoreOption, users_app
from satchel.cli.stores import target
from satchel.clock import Clock, system_clock

if TYPE_CHECKING:
    from satchel.stores.base import UserStore

_UTF8_BOM: Final = b"\xef\xbb\xbf"
#: Progress is redrawn after this many lines, not after every one.
_PROGRESS_EVERY: Final = 500


def _plural(count: int, word: str) -> str:
    return f"{count:,} {word}{'' if count == 1 else 's'}"


def summary(report: ImportReport) -> str:
    """``Imported N users, M lines refused``."""
    users, refused = _plural(report.imported, "user"), _plural(len(report.refused), "line")
    return f"Imported {users}, {refused} refused"


async def import_file(
    path: Path,
    store: UserStore,
    *,
    batch_size: int = DEFAULT_BATCH_SIZE,
    clock: Clock = system_clock,
    report: ImportReport | None = None,
    on_progress: Callable[[int], None] | None = None,
) -> ImportReport:
    """Import the JSON-lines file at ``path`` into ``store``; the command's whole work.

    ``on_progress`` is called with the number of bytes read so far. Refused lines are in
    the report; store failures propagate, with ``report`` holding what was done before.
    """
    importer = UserImporter(store, batch_size=batch_size, clock=clock, report=report)
    done = 0
    with path.open("rb") as stream:
        for number, raw in enumerate(stream, start=1):
            done += len(raw)
            await importer.add(number, raw.removeprefix(_UTF8_BOM) if number == 1 else raw)
            if on_progress is not None and number % _PROGRESS_EVERY == 0:
                on_progress(done)
    await importer.finish()
    if on_progress is not None:
        on_progress(done)
    return importer.report


def _progress(console: Console) -> Progress:
    return Progress(
        TextColumn("Importing"),
        BarColumn(),
        TaskProgressColumn(),
        TimeElapsedColumn(),
        console=console,
        transient=True,
        disable=not console.is_terminal,
    )


@users_app.command("import", cls=Command)
def users_import(
    ctx: typer.Context,
    file: Annotated[
        Path,
        typer.Argument(
            help="JSON lines: username, password_hash, roles, and optional id, email, disabled.",
            metavar="FILE",
            exists=True,
            dir_okay=False,
            readable=True,
        ),
    ],
    store: StoreOption = DEFAULT_STORE,
    batch_size: Annotated[
        int,
        typer.Option(
            "--batch-size", min=1, max=MAX_BATCH_SIZE, help="Accounts written per store call."
        ),
    ] = DEFAULT_BATCH_SIZE,
) -> None:
    """Import users with existing password hashes (bcrypt, Django PBKDF2, argon2).

    Each user signs in with their old password; the first sign-in rehashes it to argon2id.
    Bad lines are listed with their number and reason; the other lines still load.
    """
    # The data-command rules: never memory://, never a new store nobody named.
    where = target(ctx, store=store)
    report = ImportReport()
    out = Console(highlight=False)

    async def main() -> None:
        # The raw backend, without the per-call deadline the server puts in front of it: a
        # batch of a thousand inserts may rightly take longer than one request's store call.
        async with where.stores() as stores:
            await _load(stores.users)

    async def _load(users: UserStore) -> None:
        try:
            with _progress(out) as progress:
                task = progress.add_task("import", total=max(1, file.stat().st_size))
                await import_file(
                    file,
                    users,
                    batch_size=batch_size,
                    report=report,
                    on_progress=lambda done: progress.update(task, completed=done),
                )
        except Exception:
            # What did load stays loaded; say how far it got before the one-line error.
            _print_refusals(report)
            out.print(f"{summary(report)} before the error.")
            raise

    where.run(main)
    _print_refusals(report)
    out.print(f"{summary(report)}.")
    if report.refused:
        raise typer.Exit(EXIT_ERROR)


def _print_refusals(report: ImportReport) -> None:
    if not report.refused:
        return
    err = Console(stderr=True, highlight=False, soft_wrap=True)
    for refused in report.sorted_refusals():
        err.print(f"line {refused.line}: {refused.reason}", markup=False)
