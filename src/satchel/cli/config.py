"""``satchel config check``: the effective configuration, secrets masked, and every problem.

The same checks run before ``satchel serve`` starts (:func:`check_or_exit`): an error stops
it, a warning is printed and the server starts. One line per problem, naming the setting.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import typer
from pydantic import ValidationError

from satchel.cli.app import EXIT_USAGE, Command, app, err, out, run
from satchel.cli.help import Group
from satchel.config.settings import Settings, describe_validation_error
from satchel.errors import ConfigurationError

if TYPE_CHECKING:
    from satchel.ops.checks import Problem

config_app = typer.Typer(
    help="Check the configuration the server would start with.", no_args_is_help=True, cls=Group
)
app.add_typer(config_app, name="config")


def print_problems(problems: list[Problem]) -> None:
    """Each problem on one line of standard error: ``Error: SATCHEL_X: ...``."""
    console = err()
    for problem in problems:
        word = "Error" if problem.severity == "error" else "Warning"
        console.print(f"{word}: {problem.line()}", markup=False, soft_wrap=True)


def check_or_exit(settings: Settings) -> None:
    """Run every check; print the problems; exit with status 2 if one is an error."""
    from satchel.ops.checks import check_all, errors

    problems = run(lambda: check_all(settings))
    print_problems(problems)
    if errors(problems):
        raise typer.Exit(EXIT_USAGE)


def _settings_or_exit() -> Settings:
    """Settings from the environment; each invalid value on a line of its own."""
    try:
        return Settings()
    except ConfigurationError as exc:
        context = exc.__context__
        if isinstance(context, ValidationError):
            detail = describe_validation_error(context).removeprefix("Invalid configuration: ")
            lines = detail.split("; ")
        else:
            lines = [exc.detail]
        console = err()
        for line in lines:
            console.print(f"Error: {line}", markup=False, soft_wrap=True)
        raise typer.Exit(EXIT_USAGE) from None


@config_app.command("check", cls=Command)
def check(
    offline: Annotated[
        bool,
        typer.Option(
            "--offline", help="Check the rules only; do not connect to Redis or PostgreSQL."
        ),
    ] = False,
) -> None:
    """Print the effective configuration (secrets masked) and every problem with it.

    Reads the SATCHEL_* environment as `satchel serve` does. Exits with status 2 when a
    problem would stop the server, 0 otherwise (warnings included).
    """
    from satchel.ops.checks import check_all, check_settings, effective_config, errors

    settings = _settings_or_exit()
    console = out()
    console.print("satchel configuration (* = set, others are defaults)", markup=False)
    rows = effective_config(settings)
    width = max(len(name) for name, _value, _set in rows)
    for name, value, explicit in rows:
        mark = "*" if explicit else " "
        console.print(f"{mark} {name.ljust(width)}  {value}", markup=False, soft_wrap=True)
    problems = check_settings(settings) if offline else run(lambda: check_all(settings))
    print_problems(problems)
    failed = errors(problems)
    warnings = len(problems) - len(failed)
    if failed:
        err().print(f"{len(failed)} error(s), {warnings} warning(s)", markup=False)
        raise typer.Exit(EXIT_USAGE)
    console.print(f"configuration OK ({warnings} warning(s))", markup=False)
