"""Which store the data commands touch: never memory://, never a store created by accident,
always said out loud, never with its password; flags named in errors; no signing keys made
by user and session commands."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from click.testing import Result
from typer.testing import CliRunner

from satchel.accounts.passwords import PasswordHasher
from satchel.accounts.users import UserService
from satchel.cli import app
from satchel.config.build import build_auth
from satchel.config.settings import Settings
from satchel.keys.manager import INITIAL_KEY_RECORD
from satchel.stores import open_stores
from satchel.strategies.base import LoginContext
from satchel.strategies.hybrid import PEPPER_NAME
from satchel.transports.csrf import SECRET_NAME as CSRF_SECRET

Invoke = Callable[..., Result]

PASSWORD = "a long passphrase for the tests"

#: Every command that reads or changes data, with the input it needs.
DATA_COMMANDS: list[tuple[list[str], str | None]] = [
    (["users", "add", "mia", "--password-stdin"], PASSWORD + "\n"),
    (["users", "list"], None),
    (["users", "disable", "mia"], None),
    (["users", "enable", "mia"], None),
    (["sessions", "list"], None),
    (["sessions", "revoke", "--user", "mia"], None),
    (["sessions", "purge"], None),
    (["keys", "list"], None),
    (["keys", "rotate"], None),
]
SESSION_COMMANDS = [c for c in DATA_COMMANDS if c[0][0] == "sessions" or c[0][1] == "disable"]
COMMAND_IDS = [" ".join(args[:2]) for args, _ in DATA_COMMANDS]


@pytest.fixture
def cli() -> Invoke:
    runner = CliRunner()

    def invoke(*args: str, input: str | None = None, env: dict[str, str | None] | None = None):
        # No SATCHEL_STORE unless a test sets one: the default store is under test here.
        full_env: dict[str, str | None] = {"COLUMNS": "250", "SATCHEL_STORE": None}
        return runner.invoke(app, list(args), input=input, env={**full_env, **(env or {})})

    return invoke


def one_error_line(result: Result, code: int = 2) -> str:
    assert result.exit_code == code, result.output
    lines = result.output.strip().splitlines()
    assert len(lines) == 1, result.output
    assert lines[0].startswith("Error: "), result.output
    return lines[0]


async def _make_user(url: str, name: str) -> None:
    """What an application does through the library (no CLI involved)."""
    stores = await open_stores(url)
    hasher = PasswordHasher.insecure_fast_for_tests()
    try:
        await UserService(stores.users, hasher).create_user(name, PASSWORD)
    finally:
        hasher.close()
        await stores.close()


async def _secrets_and_keys(url: str) -> tuple[list[str], list[bytes | None]]:
    stores = await open_stores(url)
    try:
        kids = [k.kid for k in await stores.keys.list_keys()]
        names = (INITIAL_KEY_RECORD, CSRF_SECRET, PEPPER_NAME)
        return kids, [await stores.keys.get_secret(name) for name in names]
    finally:
        await stores.close()


# --- memory:// ----------------------------------------------------------------------------


@pytest.mark.parametrize(("args", "stdin"), DATA_COMMANDS, ids=COMMAND_IDS)
def test_data_commands_refuse_a_memory_store(cli: Invoke, args: list[str], stdin: str | None):
    line = one_error_line(cli(*args, "--store", "memory://", input=stdin))
    assert line.startswith("Error: --store memory:// "), line
    line = one_error_line(cli(*args, input=stdin, env={"SATCHEL_STORE": "MEMORY://"}))
    assert line.startswith("Error: SATCHEL_STORE memory:// "), line


@pytest.mark.parametrize(
    ("args", "stdin"), SESSION_COMMANDS, ids=[" ".join(a[:2]) for a, _ in SESSION_COMMANDS]
)
def test_session_commands_refuse_a_memory_sessions_store(
    cli: Invoke, tmp_path: Path, args: list[str], stdin: str | None
) -> None:
    env = {"SATCHEL_STORE": f"sqlite:///{tmp_path / 'a.db'}", "SATCHEL_SESSIONS_STORE": "memory://"}
    line = one_error_line(cli(*args, input=stdin, env=env))
    assert "SATCHEL_SESSIONS_STORE is memory://" in line


def test_users_add_needs_no_sessions_store(cli: Invoke, tmp_path: Path) -> None:
    env = {"SATCHEL_STORE": f"sqlite:///{tmp_path / 'a.db'}", "SATCHEL_SESSIONS_STORE": "memory://"}
    result = cli("users", "add", "mia", "--password-stdin", input=PASSWORD + "\n", env=env)
    assert result.exit_code == 0, result.output


# --- the default store --------------------------------------------------------------------


@pytest.mark.parametrize(("args", "stdin"), DATA_COMMANDS, ids=COMMAND_IDS)
def test_a_missing_default_store_is_never_created(
    cli: Invoke, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, args: list[str], stdin: str | None
) -> None:
    monkeypatch.chdir(tmp_path)
    line = one_error_line(cli(*args, input=stdin))
    assert "No --store given" in line and "sqlite:///satchel.db" in line
    assert str(tmp_path / "satchel.db") in line
    assert "pass --store URL" in line
    assert list(tmp_path.iterdir()) == []


def test_new_user_of_a_library_app_is_pointed_at_its_store(
    cli: Invoke, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The README's library example keeps its users in sqlite:///app.db.
    monkeypatch.chdir(tmp_path)
    asyncio.run(_make_user("sqlite:///app.db", "erin"))
    refused = cli("users", "add", "frank", "--password-stdin", input=PASSWORD + "\n")
    assert "--store" in one_error_line(refused)
    assert not (tmp_path / "satchel.db").exists()

    added = cli(
        "users", "add", "frank", "--password-stdin", "--store", "sqlite:///app.db",
        input=PASSWORD + "\n",
    )  # fmt: skip
    assert added.exit_code == 0, added.output
    assert added.output.splitlines()[-1] == f"store: sqlite:///app.db ({tmp_path / 'app.db'})"
    assert not (tmp_path / "satchel.db").exists()

    async def login() -> str:
        auth = await build_auth(Settings(strategy="hybrid", store="sqlite:///app.db"))
        try:
            await auth.start()
            return (await auth.login("frank", PASSWORD, LoginContext())).identity.username
        finally:
            await auth.close()

    assert asyncio.run(login()) == "frank"


def test_an_existing_default_store_is_used_and_named(
    cli: Invoke, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    asyncio.run(_make_user("sqlite:///satchel.db", "erin"))
    result = cli("users", "list")
    assert result.exit_code == 0, result.output
    assert "erin" in result.output
    assert result.stderr.strip() == f"store: sqlite:///satchel.db ({tmp_path / 'satchel.db'})"
    assert "store:" not in result.stdout


def test_an_explicit_new_sqlite_store_may_be_created(cli: Invoke, tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'new.db'}"
    result = cli("users", "add", "mia", "--password-stdin", "--store", url, input=PASSWORD + "\n")
    assert result.exit_code == 0, result.output
    assert (tmp_path / "new.db").is_file()
    assert result.output.splitlines()[-1] == f"store: {url}"
    from_env = cli("users", "list", env={"SATCHEL_STORE": url})
    assert "mia" in from_env.output


def test_a_missing_folder_is_a_usage_error_naming_the_flag(cli: Invoke, tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'no' / 'such.db'}"
    line = one_error_line(cli("users", "list", "--store", url))
    assert line == f"Error: --store: the folder {tmp_path / 'no'} does not exist."


def test_the_store_line_masks_the_password(cli: Invoke, database_url: str, run_id: str) -> None:
    parts = urlsplit(database_url)
    user = parts.username or "postgres"
    host = parts.netloc.rsplit("@", 1)[-1]
    # Trust authentication ignores the password, so the URL connects with it.
    url = parts._replace(netloc=f"{user}:hunter2@{host}").geturl()
    schema = f"cli_{run_id}"
    env = {"SATCHEL_STORE": url, "SATCHEL_PG_SCHEMA": schema}
    try:
        result = cli("users", "list", env=env)
        assert result.exit_code == 0, result.output
        assert "hunter2" not in result.output
        assert result.output.splitlines()[-1] == f"store: {url.replace('hunter2', '***')}"
        failed = cli("users", "disable", "nobody", env=env)
        assert failed.exit_code == 1
        assert "hunter2" not in failed.output
        assert failed.output.splitlines()[-1].startswith(f"store: postgresql://{user}:***@")
    finally:
        asyncio.run(_drop_schema(database_url, schema))


async def _drop_schema(url: str, schema: str) -> None:
    import asyncpg

    conn = await asyncpg.connect(url, timeout=5)
    try:
        await conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
    finally:
        await conn.close()


# --- flags named in errors ----------------------------------------------------------------


def test_errors_name_the_flag_not_the_setting(cli: Invoke, tmp_path: Path) -> None:
    store = f"sqlite:///{tmp_path / 'a.db'}"
    choice = "must be one of session, jwt, hybrid."
    assert one_error_line(cli("serve", "--strategy", "oauth")) == f"Error: --strategy: {choice}"
    assert (
        one_error_line(cli("sessions", "list", "--strategy", "oauth", "--store", store))
        == f"Error: --strategy: {choice}"
    )
    assert (
        one_error_line(cli("serve", "--port", "70000"))
        == "Error: --port: must be between 1 and 65535."
    )
    assert (
        one_error_line(cli("keys", "rotate", "--alg", "none", "--store", store))
        == "Error: --alg: must be one of EdDSA, ES256, RS256, HS256."
    )
    line = one_error_line(cli("serve", "--store", "bogus://admin:hunter2@db.example/x"))
    assert line.startswith("Error: --store: Unsupported store scheme 'bogus'"), line
    assert "hunter2" not in line


def test_a_value_from_the_environment_is_named_by_its_variable(cli: Invoke) -> None:
    line = one_error_line(cli("serve", env={"SATCHEL_STRATEGY": "oauth"}))
    assert line == "Error: SATCHEL_STRATEGY: must be one of session, jwt, hybrid."
    line = one_error_line(cli("serve", env={"SATCHEL_PORT": "0"}))
    assert line == "Error: SATCHEL_PORT: must be between 1 and 65535."
    # A setting without a flag keeps its variable's name.
    line = one_error_line(cli("serve", env={"SATCHEL_IDLE_TIMEOUT": "1"}))
    assert "SATCHEL_IDLE_TIMEOUT" in line


# --- no signing keys from user and session commands ---------------------------------------


@pytest.mark.parametrize("strategy", ["jwt", "hybrid"])
def test_user_and_session_commands_create_no_keys(
    cli: Invoke, tmp_path: Path, strategy: str
) -> None:
    url = f"sqlite:///{tmp_path / 'keyless.db'}"
    env = {"SATCHEL_STORE": url, "SATCHEL_STRATEGY": strategy}
    added = cli("users", "add", "mia", "--password-stdin", input=PASSWORD + "\n", env=env)
    assert added.exit_code == 0, added.output
    for args in (
        ["users", "list"],
        ["users", "disable", "mia"],
        ["users", "enable", "mia"],
        ["sessions", "revoke", "--user", "mia"],
        ["sessions", "purge"],
        ["keys", "list"],
    ):
        result = cli(*args, env=env)
        assert result.exit_code == 0, (args, result.output)
    # Every strategy keeps a record per sign-in (jwt: its refresh-token family); listing
    # them creates nothing.
    listed = cli("sessions", "list", env=env)
    assert listed.exit_code == 0, listed.output
    assert asyncio.run(_secrets_and_keys(url)) == ([], [None, None, None])


def test_hybrid_admin_commands_work_without_touching_the_keys(cli: Invoke, tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'hybrid.db'}"
    env = {"SATCHEL_STORE": url, "SATCHEL_STRATEGY": "hybrid"}
    for name in ("mia", "ned"):
        added = cli("users", "add", name, "--password-stdin", input=PASSWORD + "\n", env=env)
        assert added.exit_code == 0, added.output
    settings = Settings(strategy="hybrid", store=url)

    async def login(name: str) -> str:
        auth = await build_auth(settings)
        try:
            await auth.start()
            sid = (await auth.login(name, PASSWORD, LoginContext())).identity.session_id
            assert sid is not None
            return sid
        finally:
            await auth.close()

    mia, ned = asyncio.run(login("mia")), asyncio.run(login("ned"))
    before = asyncio.run(_secrets_and_keys(url))
    assert len(before[0]) == 1  # the server made its key; the CLI must leave it alone

    listing = cli("sessions", "list", env=env)
    assert listing.exit_code == 0, listing.output
    assert mia in listing.output and ned in listing.output
    assert cli("users", "disable", "mia", env=env).exit_code == 0
    assert cli("sessions", "revoke", ned, env=env).exit_code == 0
    assert "No sessions." in cli("sessions", "list", env=env).output
    assert asyncio.run(_secrets_and_keys(url)) == before
