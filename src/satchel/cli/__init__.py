"""The ``satchel`` command: run the reference server and administer users, sessions and keys.

Every data command takes ``--store URL`` (env ``SATCHEL_STORE``) and builds its objects
through :class:`satchel.config.settings.Settings`, so the CLI and the server read the same
configuration. Errors print one red line and exit with status 1 (or 2 for bad arguments or
configuration) — never a traceback, never a password or a store URL's password.
"""

from __future__ import annotations

import asyncio
import importlib
import signal
import sys
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING, Annotated, Any, NoReturn, TypeVar

import typer
from rich import box
from rich.console import Console
from rich.table import Table

from satchel.audit import safe_text
from satchel.clock import system_clock
from satchel.errors import ConfigurationError, InvalidInput, SatchelError

if TYPE_CHECKING:
    from satchel.auth import Auth
    from satchel.config.settings import Settings
    from satchel.stores.base import SessionRecord, Stores

_T = TypeVar("_T")

EXIT_ERROR = 1
EXIT_USAGE = 2

app = typer.Typer(
    name="satchel",
    help="satchel authentication: reference server and administration.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
users_app = typer.Typer(help="Create, list, disable and enable users.", no_args_is_help=True)
sessions_app = typer.Typer(
    help="List, revoke and purge server-side sessions.", no_args_is_help=True
)
keys_app = typer.Typer(help="List and rotate signing keys.", no_args_is_help=True)
app.add_typer(users_app, name="users")
app.add_typer(sessions_app, name="sessions")
app.add_typer(keys_app, name="keys")

StoreOption = Annotated[
    str | None,
    typer.Option(
        "--store",
        envvar="SATCHEL_STORE",
        help="Store URL: memory://, sqlite:///path, redis://..., postgresql://... "
        "[default: sqlite:///satchel.db]",
        show_default=False,
    ),
]
StrategyOption = Annotated[
    str | None,
    typer.Option(
        "--strategy",
        envvar="SATCHEL_STRATEGY",
        help="Credential strategy: session, jwt or hybrid [default: session]",
        show_default=False,
    ),
]


# --- plumbing ---------------------------------------------------------------------------


def _out() -> Console:
    return Console(highlight=False)


def _fail(message: str, code: int = EXIT_ERROR) -> NoReturn:
    Console(stderr=True, highlight=False).print(
        f"[bold red]Error:[/] {safe_text(message, 500)}", markup=True, soft_wrap=True
    )
    raise typer.Exit(code)


def _settings(**overrides: Any) -> Settings:
    """Settings from the environment, with the command-line values that were given on top."""
    from satchel.config.settings import Settings

    return Settings(**{k: v for k, v in overrides.items() if v is not None})


def _run(main: Callable[[], Awaitable[_T]]) -> _T:
    """Run an async command body; turn every failure into one clean line and an exit code."""
    try:
        return asyncio.run(_call(main))
    except typer.Exit:
        raise
    except typer.Abort:
        _fail("Aborted.")
    except (ConfigurationError, InvalidInput) as exc:
        _fail(exc.detail, EXIT_USAGE)
    except SatchelError as exc:
        _fail(exc.detail)
    except KeyboardInterrupt:
        _fail("Interrupted.", 130)
    except Exception as exc:  # drivers and the OS raise their own types; still no traceback
        _fail(_describe(exc))


async def _call(main: Callable[[], Awaitable[_T]]) -> _T:
    return await main()


def _describe(exc: BaseException) -> str:
    # Driver messages may quote connection strings, so only the type and an OS reason are shown.
    if isinstance(exc, OSError) and exc.strerror:
        return f"{type(exc).__name__}: {exc.strerror}"
    if isinstance(exc, ModuleNotFoundError) and exc.name:
        return f"A required module is missing: {exc.name} (install the satchel extra for it)."
    return f"Unexpected error ({type(exc).__name__})."


@asynccontextmanager
async def _auth(settings: Settings) -> AsyncIterator[Auth]:
    from satchel.config.build import build_auth

    auth = await build_auth(settings)
    try:
        # Started so revocations from the CLI reach running servers through the bus.
        await auth.start()
        yield auth
    finally:
        await auth.close()


@asynccontextmanager
async def _stores(settings: Settings) -> AsyncIterator[Stores]:
    from satchel.stores import open_stores

    stores = await open_stores(
        settings.store, sessions_url=settings.sessions_store, prefix=settings.key_prefix
    )
    try:
        yield stores
    finally:
        await stores.close()


def _when(ts: float | None) -> str:
    if ts is None:
        return "-"
    try:
        return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%d %H:%M:%S")
    except (OverflowError, OSError, ValueError):
        return "-"


_NO_WRAP_COLUMNS = frozenset({"id", "kid", "alg", "state", "status"})


def _table(title: str, columns: Sequence[str]) -> Table:
    table = Table(
        title=title, title_justify="left", box=box.SIMPLE_HEAD, pad_edge=False, padding=(0, 1, 0, 0)
    )
    for column in columns:
        # Identifiers are copied into other commands, so they stay whole; text and
        # timestamps wrap (a timestamp at its space) when the terminal is narrow.
        table.add_column(column, overflow="fold", no_wrap=column in _NO_WRAP_COLUMNS)
    return table


def _read_password_stdin() -> str:
    # Only the line ending is removed: the password is used byte-exact, spaces included.
    line = sys.stdin.readline()
    if line.endswith("\n"):
        line = line[:-1]
        if line.endswith("\r"):
            line = line[:-1]
    if not line:
        _fail("No password on standard input.", EXIT_USAGE)
    return line


# --- serve ------------------------------------------------------------------------------


def _exit_cleanly(signum: int, frame: FrameType | None) -> None:
    raise typer.Exit(0)


@app.command()
def serve(
    host: Annotated[
        str | None,
        typer.Option(
            "--host",
            envvar="SATCHEL_HOST",
            help="Address to listen on [default: 127.0.0.1]",
            show_default=False,
        ),
    ] = None,
    port: Annotated[
        int | None,
        typer.Option(
            "--port",
            envvar="SATCHEL_PORT",
            help="Port to listen on [default: 8000]",
            show_default=False,
        ),
    ] = None,
    strategy: StrategyOption = None,
    store: StoreOption = None,
) -> None:
    """Run the reference authentication server."""
    try:
        settings = _settings(host=host, port=port, strategy=strategy, store=store)
        from satchel.server import run

        # uvicorn shuts down gracefully on SIGTERM and then re-raises the signal; ending with
        # status 0 instead tells supervisors the stop was clean.
        previous = signal.signal(signal.SIGTERM, _exit_cleanly)
        try:
            run(settings)
        finally:
            signal.signal(signal.SIGTERM, previous)
    except (ConfigurationError, InvalidInput) as exc:
        _fail(exc.detail, EXIT_USAGE)
    except SatchelError as exc:
        _fail(exc.detail)
    except KeyboardInterrupt:
        raise typer.Exit(0) from None
    except (ImportError, OSError) as exc:
        _fail(_describe(exc))


# --- bench ------------------------------------------------------------------------------


def _benchmarks_main() -> Callable[[Sequence[str]], int]:
    """``benchmarks.main`` from the source checkout this package runs from.

    The benchmarks live beside ``src/`` (they are not part of the installed package), so an
    editable install from a clone finds them; anything else gets a clear message.
    """
    checkout = Path(__file__).resolve().parents[2]
    if (checkout / "benchmarks" / "__init__.py").is_file() and str(checkout) not in sys.path:
        sys.path.insert(0, str(checkout))
    try:
        # Imported by name: the benchmarks are not part of the typed package.
        bench_main: Callable[[Sequence[str]], int] = importlib.import_module("benchmarks").main
    except ImportError as exc:
        _fail(
            "satchel bench runs from a source checkout with the benchmark extra installed "
            f"(bash scripts/bootstrap bench): {_describe(exc)}",
            EXIT_USAGE,
        )
    return bench_main


@app.command(
    context_settings={"allow_extra_args": True, "ignore_unknown_options": True},
    add_help_option=False,
)
def bench(ctx: typer.Context) -> None:
    """Run the benchmarks and write docs/benchmarks.md (--quick for a short run, --help)."""
    raise typer.Exit(_benchmarks_main()(list(ctx.args)))


# --- users ------------------------------------------------------------------------------


@users_app.command("add")
def users_add(
    name: Annotated[str, typer.Argument(help="Username.")],
    role: Annotated[
        list[str] | None,
        typer.Option("--role", "-r", help="Role to grant; repeat for several."),
    ] = None,
    password_stdin: Annotated[
        bool,
        typer.Option("--password-stdin", help="Read the password from the first line of stdin."),
    ] = False,
    store: StoreOption = None,
    strategy: StrategyOption = None,
) -> None:
    """Create a user (the password is prompted for twice unless --password-stdin)."""
    settings = _run_sync(lambda: _settings(store=store, strategy=strategy))

    async def main() -> None:
        async with _auth(settings) as auth:
            # Asked only once the store opened, so a bad --store fails before any typing.
            if password_stdin:
                password = _read_password_stdin()
            else:
                password = typer.prompt("Password", hide_input=True, confirmation_prompt=True)
            user = await auth.users.create_user(name, password, role or ())
        roles = ", ".join(user.roles) or "no roles"
        _out().print(f"Created user {safe_text(user.username)} (id {user.id}; {roles}).")

    _run(main)


@users_app.command("list")
def users_list(
    limit: Annotated[int, typer.Option(help="Show at most this many users.")] = 100,
    offset: Annotated[int, typer.Option(help="Skip this many users first.")] = 0,
    store: StoreOption = None,
) -> None:
    """List users, ordered by username."""
    settings = _run_sync(lambda: _settings(store=store))

    async def main() -> None:
        async with _auth(settings) as auth:
            users = await auth.users.list_users(limit=limit, offset=offset)
        table = _table("Users", ["username", "id", "roles", "status", "created"])
        for user in users:
            table.add_row(
                safe_text(user.username),
                user.id,
                ", ".join(user.roles),
                "disabled" if user.disabled else "active",
                _when(user.created_at),
            )
        _out().print(table if users else "No users.")

    _run(main)


def _set_disabled(name: str, disabled: bool, store: str | None, strategy: str | None) -> None:
    settings = _run_sync(lambda: _settings(store=store, strategy=strategy))

    async def main() -> None:
        async with _auth(settings) as auth:
            user = await auth.users.get_by_name(name)
            # Through the facade: the strategy ends live credentials and publishes the
            # revocation to running servers, and the change is audited like the admin page's.
            await auth.set_disabled(user.id, disabled)
        state = "Disabled" if disabled else "Enabled"
        note = "; existing credentials revoked" if disabled else ""
        _out().print(f"{state} user {safe_text(user.username)}{note}.")

    _run(main)


@users_app.command("disable")
def users_disable(
    name: Annotated[str, typer.Argument(help="Username.")],
    store: StoreOption = None,
    strategy: StrategyOption = None,
) -> None:
    """Disable a user and revoke every credential issued to them."""
    _set_disabled(name, True, store, strategy)


@users_app.command("enable")
def users_enable(
    name: Annotated[str, typer.Argument(help="Username.")],
    store: StoreOption = None,
    strategy: StrategyOption = None,
) -> None:
    """Enable a disabled user again (revoked credentials stay revoked)."""
    _set_disabled(name, False, store, strategy)


# --- sessions ---------------------------------------------------------------------------


def _session_table(records: Sequence[SessionRecord], names: dict[str, str]) -> Table:
    table = _table("Sessions", ["id", "user", "last seen", "expires", "ip", "agent"])
    for record in records:
        table.add_row(
            record.id,
            safe_text(names.get(record.user_id, record.user_id)),
            _when(record.last_seen_at),
            _when(record.expires_at()),
            safe_text(record.ip or "-"),
            safe_text(record.user_agent or "-", 32),
        )
    return table


@sessions_app.command("list")
def sessions_list(
    user: Annotated[
        str | None, typer.Option("--user", "-u", help="Only this user's sessions.")
    ] = None,
    limit: Annotated[int, typer.Option(help="Show at most this many sessions.")] = 100,
    store: StoreOption = None,
    strategy: StrategyOption = None,
) -> None:
    """List live sessions, of one user or of everyone (newest first)."""
    settings = _run_sync(lambda: _settings(store=store, strategy=strategy))
    if not 1 <= limit <= 1000:
        _fail("--limit must be between 1 and 1000.", EXIT_USAGE)

    async def main() -> None:
        async with _auth(settings) as auth:
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
        _out().print(_session_table(live, names) if live else "No sessions.")

    _run(main)


@sessions_app.command("revoke")
def sessions_revoke(
    session_id: Annotated[str | None, typer.Argument(help="Session id to end.")] = None,
    user: Annotated[
        str | None, typer.Option("--user", "-u", help="End every credential of this user.")
    ] = None,
    store: StoreOption = None,
    strategy: StrategyOption = None,
) -> None:
    """End one session by id, or every credential of a user with --user."""
    if (session_id is None) == (user is None):
        _fail("Give either a session id or --user NAME.", EXIT_USAGE)
    settings = _run_sync(lambda: _settings(store=store, strategy=strategy))

    async def main() -> None:
        async with _auth(settings) as auth:
            if user is not None:
                account = await auth.users.get_by_name(user)
                await auth.revoke_user_sessions(account.id)
                message = f"Revoked every credential of {safe_text(account.username)}."
            else:
                assert session_id is not None
                await auth.revoke_session(session_id)
                message = f"Revoked session {safe_text(session_id, 80)}."
        _out().print(message)

    _run(main)


@sessions_app.command("purge")
def sessions_purge(store: StoreOption = None) -> None:
    """Delete expired sessions from the store."""
    settings = _run_sync(lambda: _settings(store=store))

    async def main() -> None:
        async with _stores(settings) as stores:
            count = await stores.sessions.purge_expired(system_clock())
        _out().print(f"Purged {count} expired session{'s' if count != 1 else ''}.")

    _run(main)


# --- keys -------------------------------------------------------------------------------


@keys_app.command("list")
def keys_list(store: StoreOption = None) -> None:
    """List signing keys and what each does now (identifiers and dates only; never material).

    Exactly one key is "signing". A "pending" key is already published and accepted by
    every node; it starts signing at "signs from".
    """
    settings = _run_sync(lambda: _settings(store=store))

    async def main() -> None:
        from satchel.keys.manager import KeyManager

        async with _stores(settings) as stores:
            keys = await KeyManager(stores.keys, system_clock).status()
        table = _table(
            "Signing keys", ["kid", "alg", "role", "state", "created", "signs from", "not after"]
        )
        for key in keys:
            table.add_row(
                safe_text(key.kid),
                key.alg,
                key.role.value,
                key.state.value,
                _when(key.created_at),
                _when(key.signs_from),
                _when(key.not_after),
            )
        _out().print(table if keys else "No signing keys.")

    _run(main)


@keys_app.command("rotate")
def keys_rotate(
    overlap: Annotated[
        int | None,
        typer.Option(
            min=0,
            max=30 * 86_400,
            help="Seconds the previous key keeps verifying tokens after the new key starts "
            "signing [default: 86400]; keep it above the token lifetime.",
            show_default=False,
        ),
    ] = None,
    alg: Annotated[
        str | None,
        typer.Option(
            help="Algorithm of the new key [default: that of the newest key].",
            show_default=False,
        ),
    ] = None,
    now: Annotated[
        bool,
        typer.Option(
            "--now",
            help="For a compromised key: retire every current key at once (their tokens stop "
            "verifying) and sign with the new key immediately.",
        ),
    ] = False,
    store: StoreOption = None,
) -> None:
    """Publish a new signing key; it signs once every node has had time to load it.

    Until then the current key keeps signing; afterwards it verifies only, for the overlap.
    On a store without keys this creates the first key (SATCHEL_JWT_ALG, or --alg), which
    signs at once.
    """
    settings = _run_sync(lambda: _settings(store=store))

    async def main() -> None:
        from satchel.keys.manager import KeyManager
        from satchel.keys.schedule import KeyRole

        async with _stores(settings) as stores:
            manager = KeyManager(stores.keys, system_clock, alg=alg or settings.jwt_alg)
            if not await manager.list():
                active = (await manager.load_or_create()).active
                _out().print(
                    f"Created the first signing key {safe_text(active.kid)} ({active.alg}); "
                    "it signs now."
                )
                return
            await manager.rotate(alg=alg, overlap=overlap, immediate=now)
            statuses = await manager.status()
        signing = next(k for k in statuses if k.role is KeyRole.SIGNING)
        pending = [k for k in statuses if k.role is KeyRole.PENDING]
        if not pending:
            _out().print(
                f"Rotated signing keys; {safe_text(signing.kid)} ({signing.alg}) signs now. "
                "Every other key is retired."
            )
            return
        fresh = pending[-1]
        _out().print(
            f"Rotated signing keys; new key {safe_text(fresh.kid)} ({fresh.alg}) is published "
            f"and signs from {_when(fresh.signs_from)} UTC. Until then "
            f"{safe_text(signing.kid)} keeps signing."
        )

    _run(main)


def _run_sync(build: Callable[[], _T]) -> _T:
    """Run a synchronous step (e.g. reading settings) with the same error handling."""
    try:
        return build()
    except (ConfigurationError, InvalidInput) as exc:
        _fail(exc.detail, EXIT_USAGE)
    except SatchelError as exc:
        _fail(exc.detail)


def main() -> None:
    """Console-script entry point."""
    app()


users_app.command("import")(importlib.import_module("satchel.cli.import_users").users_import)
app.add_typer(importlib.import_module("satchel.cli.invites").invites_app, name="invites")
