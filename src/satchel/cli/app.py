"""The ``satchel`` Typer app, its command groups and what every command shares.

Shared here: the ``--store`` and ``--strategy`` options, output (tables, dates, one-line
errors), turning flags into :class:`~satchel.config.settings.Settings` with errors that
name the flag, and running an async command body. Errors print one red line and exit with
status 1 (or 2 for bad arguments or configuration): never a traceback, never a password.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Annotated, Any, Literal, NoReturn, TypeVar, get_args, get_origin

import typer
from rich import box
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from satchel.audit import safe_text
from satchel.cli.help import Command, Group
from satchel.config.settings import Settings
from satchel.errors import ConfigurationError, InvalidInput, SatchelError

if TYPE_CHECKING:
    from pydantic import ValidationError
    from pydantic.fields import FieldInfo

_T = TypeVar("_T")

EXIT_ERROR = 1
EXIT_USAGE = 2

#: What the options fall back to when neither the flag nor ``SATCHEL_<NAME>`` is given:
#: the defaults of :class:`Settings`, shown in the help.
DEFAULT_HOST: str = Settings.model_fields["host"].default
DEFAULT_PORT: int = Settings.model_fields["port"].default
DEFAULT_STRATEGY: str = Settings.model_fields["strategy"].default
DEFAULT_STORE: str = Settings.model_fields["store"].default

__all__ = [
    "EXIT_ERROR",
    "EXIT_USAGE",
    "Command",
    "OptionalStoreOption",
    "StoreOption",
    "StrategyOption",
    "app",
    "describe",
    "err",
    "fail",
    "flag_label",
    "keys_app",
    "out",
    "run",
    "run_sync",
    "sessions_app",
    "settings_for",
    "table",
    "users_app",
    "when",
]


def version() -> str:
    """The installed satchel version."""
    try:
        from importlib.metadata import version as installed

        return installed("satchel")
    except Exception:  # metadata is missing in odd installs (a bare source tree)
        return "unknown"


def _show_version(value: bool) -> None:
    if value:
        out().print(f"satchel {version()}")
        raise typer.Exit()


app = typer.Typer(
    name="satchel",
    help="satchel authentication: reference server and administration.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode="markdown",
    cls=Group,
)
users_app = typer.Typer(
    help="Create, list, disable and enable users.", no_args_is_help=True, cls=Group
)
sessions_app = typer.Typer(
    help="List, revoke and purge server-side sessions.", no_args_is_help=True, cls=Group
)
keys_app = typer.Typer(help="List and rotate signing keys.", no_args_is_help=True, cls=Group)
app.add_typer(users_app, name="users")
app.add_typer(sessions_app, name="sessions")
app.add_typer(keys_app, name="keys")


@app.callback()
def _root(
    show_version: Annotated[
        bool,
        typer.Option(
            "--version",
            help="Print the version and exit.",
            is_eager=True,
            callback=_show_version,
        ),
    ] = False,
) -> None:
    """satchel authentication: reference server and administration."""


StoreOption = Annotated[
    str,
    typer.Option(
        "--store",
        envvar="SATCHEL_STORE",
        metavar="URL",
        help="The store the server or app uses: sqlite:///relative/path, "
        "sqlite:////absolute/path, redis://host, postgresql://host/db (never memory://; "
        "the default only if that file exists).",
    ),
]
#: ``--store`` for a command that reads "not given" as None (``users import``).
OptionalStoreOption = Annotated[
    str | None,
    typer.Option(
        "--store",
        envvar="SATCHEL_STORE",
        metavar="URL",
        help="The store the server or app uses: sqlite:///relative/path, "
        "sqlite:////absolute/path, postgresql://host/db [default: sqlite:///satchel.db].",
    ),
]
StrategyOption = Annotated[
    str,
    typer.Option(
        "--strategy",
        envvar="SATCHEL_STRATEGY",
        metavar="session|jwt|hybrid",
        help="Credential strategy, as the server runs it.",
    ),
]


# --- output -----------------------------------------------------------------------------


def out() -> Console:
    """Standard output, no colour guessing."""
    return Console(highlight=False)


def err() -> Console:
    """Standard error, for notes beside the result (which store was used)."""
    return Console(stderr=True, highlight=False)


def fail(message: str, code: int = EXIT_ERROR) -> NoReturn:
    """Print ``Error: message`` on one line of standard error and exit with ``code``."""
    # Escaped: a message quoting "[...]" (an IPv6 host, a default) must print as written.
    text = escape(safe_text(message, 500))
    err().print(f"[bold red]Error:[/] {text}", markup=True, soft_wrap=True)
    raise typer.Exit(code)


def when(ts: float | None) -> str:
    """A timestamp as ``YYYY-MM-DD HH:MM:SS`` (UTC), ``-`` when there is none."""
    if ts is None:
        return "-"
    try:
        return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%d %H:%M:%S")
    except (OverflowError, OSError, ValueError):
        return "-"


_NO_WRAP_COLUMNS = frozenset({"id", "kid", "alg", "state", "status"})


def table(title: str, columns: Sequence[str]) -> Table:
    """A plain table; identifier columns never wrap, so they can be copied whole."""
    result = Table(
        title=title, title_justify="left", box=box.SIMPLE_HEAD, pad_edge=False, padding=(0, 1, 0, 0)
    )
    for column in columns:
        # Identifiers are copied into other commands, so they stay whole; text and
        # timestamps wrap (a timestamp at its space) when the terminal is narrow.
        result.add_column(column, overflow="fold", no_wrap=column in _NO_WRAP_COLUMNS)
    return result


# --- flags -> settings ------------------------------------------------------------------


def flag_label(ctx: typer.Context, name: str) -> str:
    """How the user gave parameter ``name``: ``--store``, or ``SATCHEL_STORE`` from the
    environment (so an error points at what to fix)."""
    param = next((p for p in ctx.command.params if p.name == name), None)
    if param is None:
        return name
    source = ctx.get_parameter_source(name)
    envvar = getattr(param, "envvar", None)
    if source is not None and source.name == "ENVIRONMENT" and isinstance(envvar, str):
        return envvar
    long_names = [o for o in param.opts if o.startswith("--")]
    return long_names[0] if long_names else name


def settings_for(
    ctx: typer.Context, fields: dict[str, str] | None = None, **flags: Any
) -> Settings:
    """Settings from the environment with the given flag values on top.

    Each flag is checked against its setting first, so a bad value is reported as
    ``--strategy: must be one of session, jwt, hybrid`` rather than by the setting's name.
    ``fields`` maps a flag to a differently named setting (``{"alg": "jwt_alg"}``).
    """
    given = {k: v for k, v in flags.items() if v is not None}
    for name, value in given.items():
        check_flag(ctx, name, value, (fields or {}).get(name, name))
    return run_sync(lambda: Settings(**given))


def check_flag(ctx: typer.Context, name: str, value: object, field_name: str) -> None:
    """Exit with a usage error naming the flag when ``value`` breaks the setting's rule."""
    from pydantic import TypeAdapter, ValidationError

    field = Settings.model_fields[field_name]
    # The field's type with its constraints (ge, le, pattern...), validated on its own.
    form: Any = (
        Annotated[(field.annotation, *field.metadata)] if field.metadata else field.annotation
    )
    adapter: TypeAdapter[Any] = TypeAdapter(form)
    try:
        adapter.validate_python(value)
    except ValidationError as exc:
        fail(f"{flag_label(ctx, name)}: {_rule(field, exc)}.", EXIT_USAGE)


def _rule(field: FieldInfo, exc: ValidationError) -> str:
    if get_origin(field.annotation) is Literal:
        return "must be one of " + ", ".join(str(a) for a in get_args(field.annotation))
    low = next((getattr(m, "ge", None) for m in field.metadata if hasattr(m, "ge")), None)
    high = next((getattr(m, "le", None) for m in field.metadata if hasattr(m, "le")), None)
    if low is not None and high is not None:
        return f"must be between {low} and {high}"
    errors = exc.errors(include_input=False, include_url=False)
    message = str(errors[0].get("msg", "invalid value")) if errors else "invalid value"
    for prefix in ("Input should", "String should", "Value should"):
        if message.startswith(prefix):
            return "must" + message[len(prefix) :]
    return message.removeprefix("Value error, ")


# --- running ----------------------------------------------------------------------------


def run(main: Callable[[], Awaitable[_T]], after: Callable[[], str | None] | None = None) -> _T:
    """Run an async command body; turn every failure into one clean line and an exit code.

    ``after`` gives a note printed on standard error last, whether the body succeeded or
    not (which store a data command used).
    """
    try:
        return asyncio.run(_call(main))
    except typer.Exit:
        raise
    except typer.Abort:
        fail("Aborted.")
    except (ConfigurationError, InvalidInput) as exc:
        fail(exc.detail, EXIT_USAGE)
    except SatchelError as exc:
        fail(exc.detail)
    except KeyboardInterrupt:
        fail("Interrupted.", 130)
    except Exception as exc:  # drivers and the OS raise their own types; still no traceback
        fail(describe(exc))
    finally:
        note = after() if after is not None else None
        if note:
            err().print(note, soft_wrap=True, markup=False)


async def _call(main: Callable[[], Awaitable[_T]]) -> _T:
    return await main()


def run_sync(build: Callable[[], _T]) -> _T:
    """Run a synchronous step (e.g. reading settings) with the same error handling."""
    try:
        return build()
    except (ConfigurationError, InvalidInput) as exc:
        fail(exc.detail, EXIT_USAGE)
    except SatchelError as exc:
        fail(exc.detail)


def describe(exc: BaseException) -> str:
    """A failure from a driver or the OS in words that cannot leak a connection string."""
    if isinstance(exc, OSError) and exc.strerror:
        return f"{type(exc).__name__}: {exc.strerror}"
    if isinstance(exc, ModuleNotFoundError) and exc.name:
        return f"A required module is missing: {exc.name} (install the satchel extra for it)."
    return f"Unexpected error ({type(exc).__name__})."
