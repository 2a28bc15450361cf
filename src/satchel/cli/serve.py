"""``satchel serve``: run the reference server, after a banner saying what it serves."""

from __future__ import annotations

import signal
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING, Annotated

import typer

from satchel.cli.app import (
    DEFAULT_HOST,
    DEFAULT_PORT,
    DEFAULT_STORE,
    DEFAULT_STRATEGY,
    EXIT_USAGE,
    Command,
    StrategyOption,
    app,
    describe,
    err,
    fail,
    flag_label,
    run,
    settings_for,
    version,
)
from satchel.cli.config import check_or_exit
from satchel.cli.stores import is_memory, open_for, shown_store
from satchel.errors import ConfigurationError, InvalidInput, SatchelError

if TYPE_CHECKING:
    from satchel.config.settings import Settings

ServeStoreOption = Annotated[
    str,
    typer.Option(
        "--store",
        envvar="SATCHEL_STORE",
        metavar="URL",
        help="Store URL: memory:// (gone when the server stops), sqlite:///path (relative) "
        "or sqlite:////path (absolute), redis://host, postgresql://host/db.",
    ),
]


def _exit_cleanly(signum: int, frame: FrameType | None) -> None:
    raise typer.Exit(0)


def base_url(settings: Settings) -> str:
    """Where the server listens, as a browser address."""
    host = f"[{settings.host}]" if ":" in settings.host else settings.host
    return f"http://{host}:{settings.port}/"


def add_user_store(settings: Settings) -> str:
    """The ``--store`` value that reaches this server's users from any folder."""
    from satchel.stores import redact_url

    url = settings.store
    if url.lower().startswith("sqlite:///") and not url[len("sqlite:///") :].startswith("/"):
        return f"sqlite:///{Path.cwd() / url[len('sqlite:///') :]}"
    return redact_url(url)


def shown_mail(settings: Settings) -> str:
    """Where account mails go (password masked)."""
    from satchel.config.accounts import mail_url
    from satchel.stores import redact_url

    return redact_url(mail_url(settings))


def banner(settings: Settings, has_users: bool | None) -> str:
    """What ``serve`` prints before it starts: address, strategy, store, transports and,
    for an empty user store, how to add the first user."""
    lines = [
        f"satchel {version()} serving {base_url(settings)}",
        f"  strategy    {settings.strategy}",
        f"  store       {shown_store(settings)}",
        f"  transports  {', '.join(settings.transport_names)}",
        f"  mail        {shown_mail(settings)}",
    ]
    if has_users is None:
        lines.append(
            "  no users: memory:// starts empty and `satchel users add` cannot reach it; "
            "serve a sqlite:///file store to add users, or open the setup link printed below"
        )
    elif not has_users:
        lines.append(
            f"  no users yet: run `satchel users add NAME --store {add_user_store(settings)}`"
            " or open the setup link printed below"
        )
    return "\n".join(lines)


async def _has_users(settings: Settings, label: str) -> bool | None:
    """Whether the user store has an account; None for memory:// (the server's own)."""
    if is_memory(settings.store):
        return None
    stores = await open_for(settings, label)
    try:
        return bool(await stores.users.list_users(limit=1, offset=0))
    finally:
        await stores.close()


@app.command(cls=Command)
def serve(
    ctx: typer.Context,
    host: Annotated[
        str,
        typer.Option("--host", envvar="SATCHEL_HOST", metavar="ADDRESS", help="Listen here."),
    ] = DEFAULT_HOST,
    port: Annotated[
        int,
        typer.Option("--port", envvar="SATCHEL_PORT", metavar="PORT", help="Listen on this port."),
    ] = DEFAULT_PORT,
    strategy: StrategyOption = DEFAULT_STRATEGY,
    store: ServeStoreOption = DEFAULT_STORE,
    access_log: Annotated[
        bool,
        typer.Option(
            "--access-log/--no-access-log",
            envvar="SATCHEL_ACCESS_LOG",
            help="Log one line per request (uvicorn's access log). Off by default: writing "
            "it costs more per request than authenticating (docs/benchmarks.md).",
        ),
    ] = False,
    metrics_port: Annotated[
        int | None,
        typer.Option(
            "--metrics-port",
            envvar="SATCHEL_METRICS_PORT",
            metavar="PORT",
            help="Serve /metrics (Prometheus) on this port of SATCHEL_METRICS_HOST "
            "(127.0.0.1 unless set) [default: off].",
        ),
    ] = None,
    log_format: Annotated[
        str | None,
        typer.Option(
            "--log-format",
            envvar="SATCHEL_LOG_FORMAT",
            metavar="text|json",
            help="Log lines as text or as one JSON object per line [default: text].",
        ),
    ] = None,
    mail: Annotated[
        str | None,
        typer.Option(
            "--mail",
            envvar="SATCHEL_MAIL_URL",
            metavar="URL",
            help="Where account mails go: smtp://, smtp+starttls://, smtps://, console://, "
            "file:///dir [default: console:// for memory:// and SQLite stores]",
            show_default=False,
        ),
    ] = None,
) -> None:
    """Run the reference authentication server.

    Every other setting is read from the environment (SATCHEL_TRANSPORTS,
    SATCHEL_SESSIONS_STORE, SATCHEL_REDIS_URL, ...); see the Settings reference.
    """
    settings = settings_for(
        ctx,
        {"mail": "mail_url"},
        host=host,
        port=port,
        strategy=strategy,
        store=store,
        metrics_port=metrics_port,
        log_format=log_format,
        mail_url=mail,
    )
    check_or_exit(settings)  # every configuration problem, one line each; errors stop here
    label = flag_label(ctx, "store")
    has_users = run(lambda: _has_users(settings, label))
    err().print(banner(settings, has_users), soft_wrap=True, markup=False)
    try:
        from satchel.server import run as serve_forever

        # uvicorn shuts down gracefully on SIGTERM and then re-raises the signal; ending with
        # status 0 instead tells supervisors the stop was clean.
        previous = signal.signal(signal.SIGTERM, _exit_cleanly)
        try:
            serve_forever(settings, checked=True, access_log=access_log)
        finally:
            signal.signal(signal.SIGTERM, previous)
    except (ConfigurationError, InvalidInput) as exc:
        fail(exc.detail, EXIT_USAGE)
    except SatchelError as exc:
        fail(exc.detail)
    except KeyboardInterrupt:
        raise typer.Exit(0) from None
    except (ImportError, OSError) as exc:
        fail(describe(exc))
