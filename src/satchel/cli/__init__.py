"""The ``satchel`` command: run the reference server and administer users, sessions and keys.

One module per command group (``serve``, ``users``, ``sessions``, ``keys``, ``bench``) on
the Typer app of :mod:`satchel.cli.app`; importing this package registers them all. Every
flag also reads ``SATCHEL_<NAME>`` from the environment, and the commands build their
objects through :class:`satchel.config.settings.Settings`, so the CLI and the server read
the same configuration.
"""

from __future__ import annotations

import importlib
from typing import Any

from satchel.cli import bench, keys, serve, sessions, users
from satchel.cli.app import (
    EXIT_ERROR,
    EXIT_USAGE,
    Command,
    OptionalStoreOption,
    app,
    fail,
    keys_app,
    run,
    run_sync,
    sessions_app,
    users_app,
)
from satchel.config.settings import Settings

__all__ = [
    "EXIT_ERROR",
    "EXIT_USAGE",
    "StoreOption",
    "app",
    "bench",
    "keys",
    "keys_app",
    "main",
    "serve",
    "sessions",
    "sessions_app",
    "users",
    "users_app",
]


def main() -> None:
    """Console-script entry point."""
    app()


# The names cli/import_users.py imports from this package, which it was written against
# before the split. Its command keeps the old store handling (no memory:// or default-file
# checks, no "store:" line) until it moves to satchel.cli.app and satchel.cli.stores.
StoreOption = OptionalStoreOption
_fail = fail
_run = run
_run_sync = run_sync


def _settings(**overrides: Any) -> Settings:
    return Settings(**{k: v for k, v in overrides.items() if v is not None})


users_app.command("import", cls=Command)(
    importlib.import_module("satchel.cli.import_users").users_import
)
