"""The ``satchel`` command: run the reference server and administer users, sessions and keys.

One module per command group (``serve``, ``config``, ``users``, ``sessions``, ``keys``,
``bench``) on the Typer app of :mod:`satchel.cli.app`; importing this package registers them
all. Every flag also reads ``SATCHEL_<NAME>`` from the environment, and the commands build
their objects through :class:`satchel.config.settings.Settings`, so the CLI and the server
read the same configuration.
"""

from __future__ import annotations

from satchel.cli import bench, config, import_users, invites, keys, serve, sessions, users
from satchel.cli.app import (
    EXIT_ERROR,
    EXIT_USAGE,
    StoreOption,
    app,
    keys_app,
    sessions_app,
    users_app,
)

__all__ = [
    "EXIT_ERROR",
    "EXIT_USAGE",
    "StoreOption",
    "app",
    "bench",
    "config",
    "import_users",
    "invites",
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
