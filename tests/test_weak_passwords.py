"""ASVS 6.2.4 / 6.2.11: new passwords that are common or derived from the context are refused.

Checked at every place a password is set (create, change, admin reset) and shown as a clean
error by the JSON API, the admin page and the command line. Passwords already stored keep
working at login: only new ones are checked.
"""

from __future__ import annotations

import html
import re
from pathlib import Path

import httpx
import pytest
from typer.testing import CliRunner

from apps import Apps, RunningApp
from satchel.accounts.passwords import PasswordHasher, check_new_password, common_passwords
from satchel.accounts.users import UserService, new_user_id
from satchel.cli import app as cli_app
from satchel.clock import ManualClock
from satchel.errors import InvalidInput, InvalidLogin, WeakPassword
from satchel.stores import MemoryStore
from satchel.stores.base import UserRecord

GOOD = "quiet harbour lamp at dusk"
BASE = "https://testserver"
SAME_ORIGIN = {"origin": BASE, "sec-fetch-site": "same-origin"}
COMMON_DETAIL = (
    "This password is one of the most common passwords and easy to guess; "
    "choose another, e.g. a phrase of several unrelated words."
)
TOKEN_RE = re.compile(r'name="csrf_token" value="([^"]+)"')


@pytest.fixture
def hasher() -> PasswordHasher:
    return PasswordHasher.insecure_fast_for_tests()


@pytest.fixture
def users(hasher: PasswordHasher) -> UserService:
    return UserService(MemoryStore(), hasher, ManualClock())


# --- the rule -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "password", ["password", "PASSWORD", "123456789", "Password1", "qwertyuiop", "iloveyou1"]
)
def test_asvs_6_2_4_common_passwords_refused(password: str) -> None:
    assert password.casefold() in common_passwords()
    with pytest.raises(WeakPassword) as caught:
        check_new_password(password)
    assert caught.value.code == "weak_password"
    assert caught.value.status == 400
    assert isinstance(caught.value, InvalidInput)
    # One fixed message for every common password, so none is ever echoed.
    assert caught.value.detail == COMMON_DETAIL


def test_asvs_6_2_4_list_loaded_once_as_a_frozenset() -> None:
    words = common_passwords()
    assert isinstance(words, frozenset)
    assert len(words) >= 20_000
    assert common_passwords() is words
    assert all(word == word.casefold() for word in words)


@pytest.mark.parametrize(
    ("username", "password"),
    [
        ("alice", "alice123!"),
        ("Alice", "ALICE-in-wonderland"),
        ("alice", "my name is alice"),
        ("dave.smith", "DAVE.SMITH"),
        ("ｄａｖｅ.smith", "dave.smith!"),  # NFKC: fullwidth letters fold to ASCII
    ],
)
def test_asvs_6_2_11_username_in_password_refused(username: str, password: str) -> None:
    with pytest.raises(WeakPassword) as caught:
        check_new_password(password, username=username)
    assert caught.value.detail == "The password must not contain the username."


def test_asvs_6_2_11_short_username_refused_only_as_the_whole_password() -> None:
    # "bob" turns up by chance inside passphrases; only the whole password is refused.
    assert check_new_password("bobcat lives here", username="bob")
    with pytest.raises(WeakPassword):
        check_new_password("BOBBOBBOB", username="bobbobbob")
    with pytest.raises(WeakPassword):
        check_new_password("Ｂobby-Tables", username="bobby-tables")


def test_asvs_6_2_11_service_name_refused() -> None:
    for password in ("satchel2024!", "My SATCHEL login", "ｓａｔｃｈｅｌ rocks on"):
        with pytest.raises(WeakPassword) as caught:
            check_new_password(password)
        assert password not in caught.value.detail


@pytest.mark.parametrize(
    "password", [GOOD, "correct horse battery staple", "  pass phrase 🦄 with spaces  "]
)
def test_passphrases_accepted(password: str) -> None:
    assert check_new_password(password, username="alice") == password.encode()


def test_short_password_still_reports_the_length() -> None:
    with pytest.raises(InvalidInput) as caught:
        check_new_password("abc")
    assert not isinstance(caught.value, WeakPassword)
    assert "at least 8" in caught.value.detail


# --- the user life cycle ------------------------------------------------------------------


async def test_asvs_6_2_4_create_change_reset_refuse_weak_passwords(
    users: UserService, hasher: PasswordHasher
) -> None:
    before = hasher.calls
    with pytest.raises(WeakPassword):
        await users.create_user("carol", "Password1")
    with pytest.raises(WeakPassword):
        await users.create_user("carolina", "carolina-2024")
    assert hasher.calls == before  # refused before any hashing
    assert await users.list_users() == []

    user = await users.create_user("carolina", GOOD)
    with pytest.raises(WeakPassword):
        await users.change_password(user.id, GOOD, "123456789")
    with pytest.raises(WeakPassword):
        await users.change_password(user.id, GOOD, "I am Carolina!")
    with pytest.raises(WeakPassword):
        await users.reset_password(user.id, "password")
    with pytest.raises(WeakPassword):
        await users.reset_password(user.id, "CAROLINA99")
    assert (await users.verify_login("carolina", GOOD)).id == user.id

    await users.change_password(user.id, GOOD, "another calm evening walk")
    assert (await users.verify_login("carolina", "another calm evening walk")).id == user.id


async def test_asvs_6_2_4_existing_weak_password_still_logs_in(
    users: UserService, hasher: PasswordHasher
) -> None:
    # An account whose password predates the rule: stored directly, as an old release did.
    legacy = UserRecord(
        id=new_user_id(),
        username="dave",
        username_key="dave",
        password_hash=await hasher.rehash("password1"),
    )
    await users.store.create_user(legacy)
    assert (await users.verify_login("dave", "password1")).id == legacy.id
    with pytest.raises(InvalidLogin):
        await users.verify_login("dave", "password2")


# --- JSON API, admin page, command line ---------------------------------------------------


@pytest.fixture
async def served(make_app: Apps) -> RunningApp:
    return await make_app(users={"root": ["admin"], "alice": []}, password=GOOD)


def csrf_token(page: httpx.Response) -> str:
    match = TOKEN_RE.search(page.text)
    assert match, "the page has no CSRF token"
    return html.unescape(match.group(1))


async def test_asvs_6_2_4_api_password_change_refuses_common_password(served: RunningApp) -> None:
    async with served.fresh_client() as client:
        login = await client.post("/auth/login", json={"username": "alice", "password": GOOD})
        assert login.status_code == 200, login.text
        for weak in ("Password1", "iloveyou1", "alice-2024!"):
            response = await client.post(
                "/auth/password",
                json={"current_password": GOOD, "new_password": weak},
                headers=SAME_ORIGIN,
            )
            assert response.status_code == 400, response.text
            body = response.json()
            assert body["error"] == "weak_password"
            assert set(body) == {"error", "detail"}
            assert weak not in response.text
        # Nothing changed: the session lives on and the old password still works.
        assert (await client.get("/auth/me")).status_code == 200
    assert (await served.auth.users.verify_login("alice", GOOD)).username == "alice"


async def test_asvs_6_2_4_admin_reset_shows_a_clean_error(served: RunningApp) -> None:
    async with served.fresh_client(headers={"accept": "text/html"}) as admin:
        form = {"csrf_token": csrf_token(await admin.get("/login"))}
        form.update(username="root", password=GOOD)
        signed_in = await admin.post("/login", data=form, headers=SAME_ORIGIN)
        assert signed_in.status_code == 303, signed_in.text
        alice = await served.auth.users.get_by_name("alice")
        token = csrf_token(await admin.get("/admin"))
        response = await admin.post(
            f"/admin/users/{alice.id}/password",
            data={"csrf_token": token, "password": "123456789"},
            headers=SAME_ORIGIN,
        )
        assert response.status_code == 400
        assert response.headers["content-type"].startswith("text/html")
        assert "most common passwords" in response.text
        assert "123456789" not in response.text
        assert "Traceback" not in response.text
    assert (await served.auth.users.verify_login("alice", GOOD)).username == "alice"


def test_asvs_6_2_4_cli_users_add_refuses_common_password(tmp_path: Path) -> None:
    env = {"COLUMNS": "250", "SATCHEL_STORE": f"sqlite:///{tmp_path / 'satchel.db'}"}
    runner = CliRunner()
    for weak in ("password1", "erin erin erin"):
        result = runner.invoke(
            cli_app, ["users", "add", "erin", "--password-stdin"], input=weak + "\n", env=env
        )
        assert result.exit_code == 2, result.output
        assert result.output.startswith("Error:"), result.output
        assert "Traceback" not in result.output
        assert weak not in result.output
    assert "No users." in runner.invoke(cli_app, ["users", "list"], env=env).output
    ok = runner.invoke(
        cli_app, ["users", "add", "erin", "--password-stdin"], input=GOOD + "\n", env=env
    )
    assert ok.exit_code == 0, ok.output
