"""``satchel users import``: JSON lines with foreign hashes, bad lines named, the rest loaded.

The command runs through Typer's CliRunner against a real SQLite file; the importer itself
also runs against PostgreSQL, and against a store with ``create_users`` for the batch path.
"""

from __future__ import annotations

import asyncio
import json
import sqlite3
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import pytest
from click.testing import Result
from typer.testing import CliRunner

from helpers import MakeStores
from satchel.accounts.hash_formats import hash_scheme
from satchel.accounts.passwords import PasswordHasher
from satchel.accounts.user_import import (
    MAX_LINE_BYTES,
    ImportLineError,
    ImportReport,
    UserImporter,
    parse_user_line,
)
from satchel.accounts.users import UserService
from satchel.cli import app
from satchel.cli.import_users import import_file, summary
from satchel.config.build import build_auth
from satchel.config.settings import Settings
from satchel.errors import StoreUnavailable, UserExists
from satchel.stores import open_store
from satchel.stores.base import BulkUserStore, UserRecord
from satchel.stores.memory import MemoryStore

PASSWORD = "the password from the old system"
# bcrypt.hashpw(PASSWORD.encode(), bcrypt.gensalt(4)), fixed so test ids stay stable.
BCRYPT = "$2b$04$udq5ZltNtSHUUDb6T23GEOSQsvvKiJ5YPzlKHxiDGyu/hzUFKIV8m"
# Django 5.2: PBKDF2PasswordHasher().encode(PASSWORD, "seasalt", iterations=1000).
DJANGO = "pbkdf2_sha256$1000$seasalt$HIy0ooNKRkwXvJmer9IMSiUx/plQrcbSmZDiQaO27ic="
UNKNOWN_HASH = "md5$0cc175b9c0f1b6a831c399e269772661"

Invoke = Callable[..., Result]


def line(username: object, password_hash: object = BCRYPT, roles: object = (), **extra: Any) -> str:
    roles = list(roles) if isinstance(roles, tuple) else roles
    return json.dumps(
        {"username": username, "password_hash": password_hash, "roles": roles, **extra}
    )


@pytest.fixture
def store_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'satchel.db'}"


@pytest.fixture
def cli(store_url: str) -> Invoke:
    runner = CliRunner()

    def invoke(*args: str, env: dict[str, str] | None = None) -> Result:
        return runner.invoke(
            app, list(args), env={"COLUMNS": "250", "SATCHEL_STORE": store_url, **(env or {})}
        )

    return invoke


def write(tmp_path: Path, lines: Sequence[str], name: str = "users.jsonl") -> Path:
    path = tmp_path / name
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


async def stored_users(store_url: str) -> dict[str, UserRecord]:
    store = await open_store(store_url)
    try:
        return {user.username_key: user for user in await store.list_users(limit=1000)}
    finally:
        await store.close()


async def sign_in(store_url: str, *names: str) -> None:
    auth = await build_auth(
        Settings(store=store_url, strategy="session"),
        hasher=PasswordHasher.insecure_fast_for_tests(),
    )
    try:
        for name in names:
            await auth.login(name, PASSWORD)
    finally:
        await auth.close()


def test_three_bad_lines_are_named_and_the_rest_load(
    cli: Invoke, store_url: str, tmp_path: Path
) -> None:
    path = write(
        tmp_path,
        [
            line("Alice", BCRYPT, ["admin"], email="alice@example.org"),
            '{"username": "bob", "password_hash": ',  # line 2: invalid JSON
            line("carol", DJANGO, ["user"], id=1001),
            line("dave", UNKNOWN_HASH),  # line 4: unknown hash format
            line("erin", BCRYPT, ["user"], disabled=True),
            line("ALICE", DJANGO),  # line 6: duplicate of line 1 once normalised
            "",
            line("Ｆrank", BCRYPT),
        ],
    )
    result = cli("users", "import", str(path))
    assert result.exit_code == 1, result.output
    assert "Traceback" not in result.output
    refused = [text for text in result.output.splitlines() if text.startswith("line ")]
    assert [text.split(":")[0] for text in refused] == ["line 2", "line 4", "line 6"]
    assert "invalid JSON" in refused[0]
    assert "password_hash" in refused[1]
    assert "duplicate username: same as line 1" in refused[2]
    assert "Imported 4 users, 3 lines refused." in result.stdout
    for secret in (BCRYPT, DJANGO, UNKNOWN_HASH, BCRYPT[-31:], DJANGO.rsplit("$", 1)[1]):
        assert secret not in result.output

    users = asyncio.run(stored_users(store_url))
    assert set(users) == {"alice", "carol", "erin", "frank"}
    assert users["alice"].username == "Alice" and users["alice"].roles == ["admin"]
    assert users["alice"].password_hash == BCRYPT
    assert users["carol"].id == "1001" and hash_scheme(users["carol"].password_hash)
    assert users["erin"].disabled

    # The imported users sign in with their old passwords and are rehashed on the way.
    asyncio.run(sign_in(store_url, "alice", "carol", "Frank"))
    users = asyncio.run(stored_users(store_url))
    assert {hash_scheme(users[key].password_hash) for key in ("alice", "carol", "frank")} == {
        "argon2id"
    }


def test_clean_file_exits_zero_and_a_second_run_refuses_every_line(
    cli: Invoke, tmp_path: Path
) -> None:
    path = write(tmp_path, [line(f"user{i}", roles=["user"]) for i in range(25)])
    first = cli("users", "import", str(path), "--batch-size", "10")
    assert first.exit_code == 0, first.output
    lines = first.output.strip().splitlines()
    assert "Imported 25 users, 0 lines refused." in lines
    # Like every data command, it says which store it used.
    assert [text for text in lines if text.startswith("store: sqlite:///")]
    again = cli("users", "import", str(path))
    assert again.exit_code == 1, again.output
    assert "line 25: username already exists in the store" in again.output
    assert "Imported 0 users, 25 lines refused." in again.stdout


def test_memory_store_is_refused_as_a_usage_error(cli: Invoke, tmp_path: Path) -> None:
    path = write(tmp_path, [line("alice")])
    result = cli("users", "import", str(path), "--store", "memory://")
    assert result.exit_code == 2, result.output
    assert result.output.startswith("Error:") and "memory://" in result.output
    assert len(result.output.strip().splitlines()) <= 2


@pytest.mark.parametrize(
    "args",
    [
        ["users", "import", "no-such-file.jsonl"],
        ["users", "import"],
        ["users", "import", "FILE", "--batch-size", "0"],
        ["users", "import", "FILE", "--store", "ftp://example.org/"],
    ],
)
def test_usage_errors_exit_two(cli: Invoke, tmp_path: Path, args: list[str]) -> None:
    path = write(tmp_path, [line("alice")])
    result = cli(*[str(path) if arg == "FILE" else arg for arg in args])
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output


def test_unavailable_store_is_one_clean_error(cli: Invoke, store_url: str, tmp_path: Path) -> None:
    assert cli("users", "import", str(write(tmp_path, [line("first")]))).exit_code == 0
    blocker = sqlite3.connect(store_url.removeprefix("sqlite:///"), isolation_level=None)
    try:
        blocker.execute("BEGIN EXCLUSIVE")  # every write fails after the busy time-out
        result = cli("users", "import", str(write(tmp_path, [line("second")])))
    finally:
        blocker.close()
    assert result.exit_code == 1, result.output
    assert "Traceback" not in result.output
    assert result.output.startswith("Error:"), result.output


async def test_store_failure_part_way_keeps_the_counts_so_far(
    store_url: str, tmp_path: Path
) -> None:
    path = write(tmp_path, [line("a"), "not json", line("b"), line("c")])
    store = await open_store(store_url)
    report = ImportReport()
    try:
        blocker = sqlite3.connect(store_url.removeprefix("sqlite:///"), isolation_level=None)
        try:
            blocker.execute("BEGIN EXCLUSIVE")
            with pytest.raises(StoreUnavailable):
                await import_file(path, store, batch_size=2, report=report)
        finally:
            blocker.close()
    finally:
        await store.close()
    assert report.imported == 0
    assert [(r.line, r.reason.split(":")[0]) for r in report.refused] == [(2, "invalid JSON")]
    assert summary(report) == "Imported 0 users, 1 line refused"


# --- one line -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        ("[1, 2]", "not a JSON object"),
        ("{", "invalid JSON"),
        (b'{"username": "\xff"}', "not valid UTF-8"),
        ("[" * 50_000, "nested too deeply"),
        (line("a", extra=1), "unknown field 'extra'"),
        (json.dumps({"username": "a", "roles": []}), "missing field 'password_hash'"),
        (json.dumps({"password_hash": BCRYPT, "roles": []}), "missing field 'username'"),
        (json.dumps({"username": "a", "password_hash": BCRYPT}), "missing field 'roles'"),
        (line(""), "username:"),
        (line("bo\u200bb"), "username:"),
        (line(42), "username:"),
        (line("a", password_hash=None), "password_hash: the stored hash is not text"),
        (line("a", password_hash="$2b$31$" + "a" * 53), "password_hash: bcrypt cost 31"),
        (line("a", roles="admin"), "roles must be a list"),
        (line("a", roles=["Admin!"]), "roles:"),
        (line("a", id=""), "id must be"),
        (line("a", id=-1), "id must be"),
        (line("a", id=True), "id must be"),
        (line("a", id="has space"), "id must be"),
        (line("a", email="not-an-address"), "email must be"),
        (line("a", email=7), "email must be"),
        (line("a", disabled="yes"), "disabled must be true or false"),
        ("x" * (MAX_LINE_BYTES + 1), "line longer than"),
    ],
)
def test_bad_lines_are_refused_with_their_reason(raw: str | bytes, reason: str) -> None:
    with pytest.raises(ImportLineError) as info:
        parse_user_line(raw, now=1.0)
    assert reason in info.value.reason
    assert BCRYPT not in info.value.reason


def test_a_line_is_normalised_exactly_as_user_service_does() -> None:
    user = parse_user_line(
        line("  Ｂob Smith ", DJANGO, ["user", "admin", "user"], id="u-1", email="b@example.org"),
        now=5.0,
    )
    assert (user.username, user.username_key) == ("Ｂob Smith", "bob smith")
    assert user.roles == ["admin", "user"]
    assert (user.id, user.email, user.disabled) == ("u-1", "b@example.org", False)
    assert user.created_at == user.updated_at == 5.0
    assert user.password_hash == DJANGO
    generated = parse_user_line(line("x"), now=5.0)
    assert generated.id and generated.id != parse_user_line(line("x"), now=5.0).id


# --- the importer on other stores -----------------------------------------------------


class BatchingMemoryStore(MemoryStore):
    """The memory store plus ``create_users``, so the batch path runs before every backend
    has its own; a name or id already taken is returned, as the protocol says."""

    def __init__(self) -> None:
        super().__init__()
        self.batches: list[int] = []

    async def create_users(self, users: Sequence[UserRecord]) -> list[str]:
        self.batches.append(len(users))
        taken = []
        for user in users:
            try:
                await self.create_user(user)
            except UserExists:
                taken.append(user.username)
        return taken


async def _import(store: Any, lines: Sequence[str], batch_size: int = 3) -> Any:
    importer = UserImporter(store, batch_size=batch_size)
    for number, text in enumerate(lines, start=1):
        await importer.add(number, text)
    return await importer.finish()


async def test_batch_path_maps_taken_names_back_to_their_lines() -> None:
    store = BatchingMemoryStore()
    assert isinstance(store, BulkUserStore)
    service = UserService(store, PasswordHasher.insecure_fast_for_tests())
    await service.create_user("taken", "a fine long password")
    report = await _import(
        store,
        [line(f"u{i}") for i in range(5)] + [line("Taken"), line("u9", id="dup"), "oops"],
    )
    assert store.batches == [3, 3, 1]
    assert report.imported == 6
    assert [(r.line, r.reason) for r in report.sorted_refusals()] == [
        (6, "username already exists in the store"),
        (8, "invalid JSON: Expecting value at column 1"),
    ]


async def test_duplicate_ids_and_emails_in_the_file_are_refused() -> None:
    report = await _import(
        MemoryStore(),
        [
            line("a", id="same", email="x@example.org"),
            line("b", id="same"),
            line("c", email="x@example.org"),
        ],
    )
    assert report.imported == 1
    assert [r.reason for r in report.sorted_refusals()] == [
        "duplicate id: same as line 1",
        "duplicate email: same as line 1",
    ]


@pytest.mark.parametrize("kind", ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
async def test_importer_on_real_stores_refuses_taken_names_and_ids(
    make_stores: MakeStores, kind: str
) -> None:
    stores = await make_stores(kind)
    first = await _import(stores.users, [line("alice", id="a1"), line("bob", id="b1")])
    assert (first.imported, first.refused) == (2, [])
    second = await _import(
        stores.users, [line("ALICE"), line("carol", id="b1"), line("dave", DJANGO)]
    )
    assert second.imported == 1
    assert [(r.line, r.reason) for r in second.sorted_refusals()] == [
        (1, "username already exists in the store"),
        (2, "id already exists in the store"),
    ]
    dave = await stores.users.get_user_by_name("dave")
    assert dave is not None and dave.password_hash == DJANGO


def test_the_example_file_in_the_docs_is_accepted() -> None:
    doc = (Path(__file__).resolve().parent.parent / "docs" / "passwords.md").read_text()
    example = doc.split("```json\n", 1)[1].split("```", 1)[0]
    users = [parse_user_line(text, now=0.0) for text in example.splitlines()]
    assert [u.username for u in users] == ["alice", "bob", "carol"]
    assert [hash_scheme(u.password_hash) for u in users] == [
        "bcrypt",
        "django_pbkdf2_sha256",
        "django_argon2id",
    ]
