"""The ``satchel`` command line, against a real SQLite file (and memory:// where it fits)."""

from __future__ import annotations

import asyncio
import re
from collections.abc import Callable
from pathlib import Path

import pytest
from click.testing import Result
from typer.testing import CliRunner

from satchel.accounts.passwords import PasswordHasher
from satchel.accounts.users import UserService
from satchel.cli import app
from satchel.config.build import build_auth
from satchel.config.settings import Settings
from satchel.errors import InvalidLogin
from satchel.stores import open_stores
from satchel.stores.base import KeyState, SessionRecord
from satchel.strategies.base import LoginContext

Invoke = Callable[..., Result]

PASSWORD = "  a long passphrase 🔑 with spaces  "


@pytest.fixture
def store_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'satchel.db'}"


@pytest.fixture
def cli(store_url: str) -> Invoke:
    runner = CliRunner()

    def invoke(*args: str, input: str | None = None, env: dict[str, str] | None = None) -> Result:
        # Wide output so Rich never folds identifiers the assertions look for.
        full_env = {"COLUMNS": "250", "SATCHEL_STORE": store_url, **(env or {})}
        return runner.invoke(app, list(args), input=input, env=full_env)

    return invoke


def assert_clean_error(result: Result, code: int, *fragments: str) -> None:
    assert result.exit_code == code, result.output
    assert "Traceback" not in result.output
    assert result.output.startswith("Error:"), result.output
    assert len(result.output.strip().splitlines()) <= 3, result.output
    for fragment in fragments:
        assert fragment in result.output, result.output


def add_user(cli, name: str, *roles: str) -> Result:
    args = ["users", "add", name, "--password-stdin"]
    for role in roles:
        args += ["--role", role]
    return cli(*args, input=PASSWORD + "\n")


async def _verify(store_url: str, name: str, password: str) -> str:
    stores = await open_stores(store_url)
    try:
        users = UserService(stores.users, PasswordHasher())
        return (await users.verify_login(name, password)).username
    finally:
        await stores.close()


# --- users --------------------------------------------------------------------------------


def test_users_add_from_stdin_keeps_the_password_byte_exact(cli: Invoke, store_url: str) -> None:
    result = add_user(cli, "Alice", "admin", "staff")
    assert result.exit_code == 0, result.output
    assert "Created user Alice" in result.output
    assert "admin, staff" in result.output
    assert PASSWORD.strip() not in result.output
    assert asyncio.run(_verify(store_url, "alice", PASSWORD)) == "Alice"
    with pytest.raises(InvalidLogin):
        asyncio.run(_verify(store_url, "alice", PASSWORD.strip()))


def test_users_add_prompts_twice(cli: Invoke, store_url: str) -> None:
    result = cli("users", "add", "bob", input="prompted password\nprompted password\n")
    assert result.exit_code == 0, result.output
    assert "prompted password" not in result.output
    assert asyncio.run(_verify(store_url, "bob", "prompted password")) == "bob"


def test_users_add_prompt_mismatch_asks_again(cli: Invoke) -> None:
    result = cli("users", "add", "bob", input="first password\nsecond password\n")
    assert result.exit_code == 1
    assert "do not match" in result.output
    assert "Traceback" not in result.output
    *_, error, store = result.output.rstrip().splitlines()
    assert error == "Error: Aborted."
    assert store.startswith("store: sqlite:///")  # where it would have gone
    assert "Created user" not in result.output
    assert "No users." in cli("users", "list").output


def test_users_list_shows_users_and_roles(cli: Invoke) -> None:
    assert add_user(cli, "carol", "admin").exit_code == 0
    assert add_user(cli, "dave").exit_code == 0
    result = cli("users", "list")
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    carol = next(line for line in lines if "carol" in line)
    assert "admin" in carol and "active" in carol
    assert any("dave" in line for line in lines)
    assert "argon2" not in result.output


def test_users_list_empty(cli: Invoke) -> None:
    result = cli("users", "list")
    assert result.exit_code == 0
    assert "No users." in result.output


def test_duplicate_user_is_a_clean_error(cli: Invoke) -> None:
    assert add_user(cli, "straße").exit_code == 0
    assert_clean_error(add_user(cli, "STRASSE"), 1, "already exists")


def test_bad_input_is_a_usage_error(cli: Invoke) -> None:
    assert_clean_error(cli("users", "add", "eve", "--password-stdin", input="short\n"), 2)
    assert_clean_error(
        cli("users", "add", "eve", "--role", "Not A Role", "--password-stdin", input="x" * 9),
        2,
    )
    assert_clean_error(cli("users", "add", "eve\x00", "--password-stdin", input="x" * 9), 2)
    assert_clean_error(cli("users", "add", "eve", "--password-stdin", input="\n"), 2)


def test_P03_huge_password_on_stdin_rejected(cli: Invoke) -> None:
    assert_clean_error(
        cli("users", "add", "eve", "--password-stdin", input="p" * 1_000_000 + "\n"),
        2,
        "1024 bytes",
    )


def test_users_disable_and_enable(
    cli: Invoke, store_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    assert add_user(cli, "erin").exit_code == 0
    caplog.set_level("INFO", logger="satchel.audit")
    result = cli("users", "disable", "ERIN")
    assert result.exit_code == 0, result.output
    assert "Disabled user erin" in result.output
    # Audited like the admin page's action (it goes through Auth.set_disabled).
    events = [r.satchel_event for r in caplog.records if hasattr(r, "satchel_event")]
    assert [e["event"] for e in events] == ["user.disabled"]
    listing = cli("users", "list").output
    assert "disabled" in next(line for line in listing.splitlines() if "erin" in line)
    with pytest.raises(InvalidLogin):
        asyncio.run(_verify(store_url, "erin", PASSWORD))

    assert cli("users", "enable", "erin").exit_code == 0
    events = [r.satchel_event for r in caplog.records if hasattr(r, "satchel_event")]
    assert [e["event"] for e in events] == ["user.disabled", "user.enabled"]
    assert asyncio.run(_verify(store_url, "erin", PASSWORD)) == "erin"


def test_disable_unknown_user(cli: Invoke) -> None:
    assert_clean_error(cli("users", "disable", "nobody"), 1, "No such user")


# --- store errors -------------------------------------------------------------------------


def test_bad_store_url_is_a_clean_error_without_the_password(cli: Invoke) -> None:
    for url in ("bogus://admin:hunter2@db.example/x", "sqlite:///", "nonsense"):
        result = cli("users", "list", "--store", url)
        assert_clean_error(result, 2)
        assert "hunter2" not in result.output


def test_store_url_from_the_environment(cli: Invoke, tmp_path: Path) -> None:
    other = f"sqlite:///{tmp_path / 'other.db'}"
    assert add_user(cli, "frank").exit_code == 0
    assert "No users." in cli("users", "list", env={"SATCHEL_STORE": other}).output
    assert "frank" in cli("users", "list").output


def test_unreadable_store_file_is_a_clean_error(cli: Invoke, tmp_path: Path) -> None:
    missing_dir = f"sqlite:///{tmp_path / 'no' / 'such' / 'dir.db'}"
    result = cli("users", "list", "--store", missing_dir)
    assert result.exit_code in (1, 2), result.output
    assert "Traceback" not in result.output
    assert result.output.startswith("Error:")


def test_serve_rejects_bad_settings_before_starting(cli: Invoke) -> None:
    assert_clean_error(
        cli("serve", "--strategy", "magic"), 2, "--strategy: must be one of session, jwt, hybrid"
    )
    assert_clean_error(cli("serve", "--port", "0"), 2, "--port: must be between 1 and 65535")


# --- sessions -----------------------------------------------------------------------------


async def _login(store_url: str, name: str) -> str:
    auth = await build_auth(Settings(store=store_url, strategy="session"))
    try:
        result = await auth.login(name, PASSWORD, LoginContext(ip="203.0.113.9", user_agent="ua"))
        assert result.identity.session_id is not None
        return result.identity.session_id
    finally:
        await auth.close()


def _session_ids(output: str, candidates: list[str]) -> set[str]:
    return {sid for sid in candidates if sid in output}


def test_sessions_list_and_revoke_one(cli: Invoke, store_url: str) -> None:
    assert add_user(cli, "gina").exit_code == 0
    assert add_user(cli, "hank").exit_code == 0
    g1 = asyncio.run(_login(store_url, "gina"))
    g2 = asyncio.run(_login(store_url, "gina"))
    h1 = asyncio.run(_login(store_url, "hank"))
    ids = [g1, g2, h1]

    everyone = cli("sessions", "list")
    assert everyone.exit_code == 0, everyone.output
    assert _session_ids(everyone.output, ids) == set(ids)
    assert "203.0.113.9" in everyone.output

    gina = cli("sessions", "list", "--user", "gina")
    assert _session_ids(gina.output, ids) == {g1, g2}

    revoked = cli("sessions", "revoke", g1)
    assert revoked.exit_code == 0, revoked.output
    assert _session_ids(cli("sessions", "list").output, ids) == {g2, h1}

    assert_clean_error(cli("sessions", "revoke", g1), 1, "No such session")


def test_sessions_revoke_user(cli: Invoke, store_url: str) -> None:
    assert add_user(cli, "ivy").exit_code == 0
    assert add_user(cli, "jack").exit_code == 0
    ivy = [asyncio.run(_login(store_url, "ivy")) for _ in range(2)]
    jack = asyncio.run(_login(store_url, "jack"))
    result = cli("sessions", "revoke", "--user", "IVY")
    assert result.exit_code == 0, result.output
    assert _session_ids(cli("sessions", "list").output, [*ivy, jack]) == {jack}


def test_sessions_revoke_needs_exactly_one_target(cli: Invoke) -> None:
    assert_clean_error(cli("sessions", "revoke"), 2, "either")
    assert_clean_error(cli("sessions", "revoke", "abc", "--user", "x"), 2, "either")


def test_sessions_list_empty(cli: Invoke) -> None:
    result = cli("sessions", "list")
    assert result.exit_code == 0, result.output
    assert "No sessions." in result.output


async def _add_session(store_url: str, sid: str, user_id: str, expires_at: float) -> None:
    stores = await open_stores(store_url)
    try:
        record = SessionRecord(
            id=sid,
            user_id=user_id,
            secret_hash=b"\x00" * 32,
            created_at=expires_at - 100,
            last_seen_at=expires_at - 100,
            idle_expires_at=expires_at,
            absolute_expires_at=expires_at,
        )
        await stores.sessions.create(record, now=expires_at - 100)
    finally:
        await stores.close()


def test_sessions_purge_removes_only_expired(cli: Invoke, store_url: str) -> None:
    # Different users: creating a session also drops its own user's expired ones.
    asyncio.run(_add_session(store_url, "old-session-one", "u1", 1_000_000.0))
    asyncio.run(_add_session(store_url, "old-session-two", "u2", 1_000_000.0))
    asyncio.run(_add_session(store_url, "live-session", "u3", 4_000_000_000.0))
    result = cli("sessions", "purge")
    assert result.exit_code == 0, result.output
    assert "Purged 2 expired sessions." in result.output
    assert "Purged 0 expired sessions." in cli("sessions", "purge").output
    assert "live-session" in cli("sessions", "list").output


# --- keys ---------------------------------------------------------------------------------


async def _stored_keys(store_url: str) -> list[tuple[str, KeyState, str]]:
    stores = await open_stores(store_url)
    try:
        return [(k.kid, k.state, k.material) for k in await stores.keys.list_keys()]
    finally:
        await stores.close()


def test_keys_list_empty(cli: Invoke) -> None:
    result = cli("keys", "list")
    assert result.exit_code == 0, result.output
    assert "No signing keys." in result.output


def test_keys_rotate_and_list_never_show_material(cli: Invoke, store_url: str) -> None:
    first = cli("keys", "rotate")
    assert first.exit_code == 0, first.output
    assert "Created the first signing key" in first.output
    second = cli("keys", "rotate", "--overlap", "600")
    assert second.exit_code == 0, second.output
    assert "Rotated signing keys" in second.output

    stored = asyncio.run(_stored_keys(store_url))
    assert len(stored) == 2
    states = {kid: state for kid, state, _ in stored}
    assert sorted(states.values()) == sorted([KeyState.ACTIVE, KeyState.PREVIOUS])
    active = next(kid for kid, state in states.items() if state is KeyState.ACTIVE)
    previous = next(kid for kid, state in states.items() if state is KeyState.PREVIOUS)
    # F14: the new key is published, the old one keeps signing until the publish delay.
    assert active in second.output and "signs from" in second.output
    assert f"Until then {previous} keeps signing" in second.output

    listing = cli("keys", "list")
    assert listing.exit_code == 0, listing.output
    rows = {k: line for line in listing.output.splitlines() for k in states if k in line}
    assert len(rows) == 2
    # Roles a reader understands: the new key is next (with when), the old one signs.
    assert "next, signs from" in rows[active]
    assert rows[previous].split()[2] == "signing"
    for _, _, material in stored:
        for chunk in re.findall(r"[A-Za-z0-9+/_=-]{16,}", material)[:5]:
            assert chunk not in listing.output
            assert chunk not in second.output


def test_F14_keys_rotate_now_signs_at_once(cli: Invoke, store_url: str) -> None:
    assert cli("keys", "rotate").exit_code == 0
    assert cli("keys", "rotate").exit_code == 0
    result = cli("keys", "rotate", "--now")
    assert result.exit_code == 0, result.output
    stored = asyncio.run(_stored_keys(store_url))
    active = [kid for kid, state, _ in stored if state is KeyState.ACTIVE]
    assert len(active) == 1 and f"{active[0]} (EdDSA) signs now" in result.output
    assert sorted(state for _, state, _ in stored).count(KeyState.RETIRED) == 2
    listing = cli("keys", "list").output
    row = next(line for line in listing.splitlines() if active[0] in line)
    assert "signing" in row
    assert sum("retired" in line for line in listing.splitlines()) == 2


def test_keys_rotate_bad_alg_is_a_clean_error(cli: Invoke) -> None:
    assert_clean_error(cli("keys", "rotate", "--alg", "none"), 2)
    negative = cli("keys", "rotate", "--overlap", "-5")
    assert negative.exit_code == 2
    assert "Traceback" not in negative.output


def test_bench_command_reaches_the_benchmark_runner() -> None:
    from typer.testing import CliRunner

    from satchel.cli import app

    result = CliRunner().invoke(app, ["bench", "--help"])
    assert result.exit_code == 0, result.output
    assert "--quick" in result.output
    assert "docs/benchmarks.md" in result.output


def test_bench_command_rejects_unknown_phase_cleanly() -> None:
    from typer.testing import CliRunner

    from satchel.cli import app

    result = CliRunner().invoke(app, ["bench", "--only", "nonsense"])
    assert result.exit_code == 2
    assert "Traceback" not in result.output
