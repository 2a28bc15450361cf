"""UserService: normalisation, login failures that look alike, rehash, password changes."""

from __future__ import annotations

import pytest

from satchel.accounts.passwords import PasswordHasher
from satchel.accounts.users import UserService, normalize_roles, normalize_username
from satchel.clock import ManualClock
from satchel.errors import (
    InvalidInput,
    InvalidLogin,
    NotFound,
    PasswordTooLong,
    SatchelError,
    UserExists,
)
from satchel.stores.memory import MemoryStore

PASSWORD = "correct horse battery"


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


@pytest.fixture
def hasher() -> PasswordHasher:
    return PasswordHasher.insecure_fast_for_tests()


@pytest.fixture
def store() -> MemoryStore:
    return MemoryStore()


@pytest.fixture
def users(store: MemoryStore, hasher: PasswordHasher, clock: ManualClock) -> UserService:
    return UserService(store, hasher, clock)


# --- normalisation ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("a", "b"),
    [
        ("Ｂob", "bob"),  # fullwidth B
        ("STRASSE", "straße"),
        ("  Alice ", "alice"),
        ("ﬁle", "file"),  # ligature
        ("Å", "Å"),  # A + combining ring vs precomposed
    ],
)
def test_normalisation_equivalences(a: str, b: str) -> None:
    assert normalize_username(a) == normalize_username(b)


def test_normalisation_keeps_distinct_names_distinct() -> None:
    assert normalize_username("bob") != normalize_username("bob2")
    assert normalize_username("jo hn") != normalize_username("john")


@pytest.mark.parametrize(
    "bad",
    [
        "",
        "   ",
        "a" * 151,
        "bob\x00",
        "bob\nadmin",
        "bob\tx",
        "bo\u200bb",  # zero-width space
        "\u202eadmin",  # right-to-left override
        "a\u2028b",  # line separator
        "x" * 100_000,
        None,
        123,
    ],
)
def test_bad_usernames_rejected(bad: object) -> None:
    with pytest.raises(InvalidInput):
        normalize_username(bad)


def test_username_length_limit_is_inclusive() -> None:
    assert normalize_username("a" * 150) == "a" * 150


def test_roles_validated_deduplicated_sorted() -> None:
    assert normalize_roles(["b", "a", "b", "x_y-1"]) == ["a", "b", "x_y-1"]
    for bad in (["Admin"], [""], ["a" * 33], ["a b"], ["admin\n"], "admin", [1]):
        with pytest.raises(InvalidInput):
            normalize_roles(bad)  # type: ignore[arg-type]


# --- creation and lookup ------------------------------------------------------------------


async def test_create_and_lookup(users: UserService, clock: ManualClock) -> None:
    user = await users.create_user(" Ｂob ", PASSWORD, ["admin", "staff", "admin"])
    assert user.username == "Ｂob"
    assert user.username_key == "bob"
    assert user.roles == ["admin", "staff"]
    assert user.created_at == clock.now
    assert user.password_hash.startswith("$argon2id$")
    assert PASSWORD not in repr(user)
    assert (await users.get(user.id)).username_key == "bob"
    assert (await users.get_by_name("BOB")).id == user.id
    other = await users.create_user("carol", PASSWORD)
    assert other.id != user.id
    assert len(user.id) >= 16


async def test_duplicate_normalised_name_rejected(users: UserService) -> None:
    await users.create_user("straße", PASSWORD)
    with pytest.raises(UserExists):
        await users.create_user("STRASSE", PASSWORD)


async def test_create_validates_before_hashing(users: UserService, hasher: PasswordHasher) -> None:
    with pytest.raises(InvalidInput):
        await users.create_user("dave", "short")
    with pytest.raises(InvalidInput):
        await users.create_user("dave", PASSWORD, ["Not A Role"])
    with pytest.raises(PasswordTooLong):
        await users.create_user("dave", "p" * 1_000_000)
    assert hasher.calls == 0


async def test_unknown_ids_and_names_are_not_found(users: UserService) -> None:
    for bad in ("nope", "", "x" * 10_000):
        with pytest.raises(NotFound):
            await users.get(bad)
    with pytest.raises(NotFound):
        await users.get_by_name("nobody")
    with pytest.raises(NotFound):
        await users.set_disabled("nope", True)
    with pytest.raises(NotFound):
        await users.invalidate_credentials("nope")


async def test_list_users_ordered_and_bounded(users: UserService) -> None:
    for name in ("carol", "alice", "bob"):
        await users.create_user(name, PASSWORD)
    assert [u.username for u in await users.list_users()] == ["alice", "bob", "carol"]
    assert [u.username for u in await users.list_users(limit=1, offset=1)] == ["bob"]
    with pytest.raises(InvalidInput):
        await users.list_users(limit=0)
    with pytest.raises(InvalidInput):
        await users.list_users(offset=-1)


# --- login --------------------------------------------------------------------------------


async def test_login_succeeds_with_any_equivalent_username(users: UserService) -> None:
    created = await users.create_user("Bob", PASSWORD)
    assert (await users.verify_login("Ｂob", PASSWORD)).id == created.id
    assert (await users.verify_login("  BOB", PASSWORD)).id == created.id


async def test_P03_emoji_passphrase_with_spaces_byte_exact(users: UserService) -> None:
    passphrase = "  my 🐎 horse is named «Ñandú» and likes 🥕 carrots, really  "
    await users.create_user("eve", passphrase)
    assert (await users.verify_login("eve", passphrase)).username == "eve"
    with pytest.raises(InvalidLogin):
        await users.verify_login("eve", passphrase.strip())


async def test_P03_huge_password_at_login_rejected_before_lookup_and_hash(
    users: UserService, hasher: PasswordHasher
) -> None:
    await users.create_user("bob", PASSWORD)
    calls = hasher.calls
    for name in ("bob", "nobody"):
        with pytest.raises(PasswordTooLong):
            await users.verify_login(name, "a" * 1_000_000)
    assert hasher.calls == calls


async def _login_error(users: UserService, username: str, password: str) -> SatchelError:
    with pytest.raises(InvalidLogin) as info:
        await users.verify_login(username, password)
    return info.value


async def test_P01_unknown_wrong_and_disabled_are_identical(
    users: UserService, hasher: PasswordHasher
) -> None:
    bob = await users.create_user("bob", PASSWORD)
    carol = await users.create_user("carol", PASSWORD)
    await users.set_disabled(carol.id, True)

    outcomes = []
    for username, password in (
        ("nobody", PASSWORD),
        ("bob", "wrong password"),
        ("carol", PASSWORD),
    ):
        before = hasher.calls
        exc = await _login_error(users, username, password)
        # Every failure path costs exactly one argon2 verification.
        assert hasher.calls - before == 1, username
        outcomes.append((type(exc), exc.code, exc.status, exc.detail, str(exc)))
    assert len(set(outcomes)) == 1
    assert outcomes[0][1:3] == ("invalid_login", 401)
    assert (await users.verify_login("bob", PASSWORD)).id == bob.id


async def test_P01_unknown_user_verifies_against_the_dummy(users: UserService) -> None:
    assert users.hasher._dummy is None
    await _login_error(users, "ghost", PASSWORD)
    assert users.hasher._dummy is not None


async def test_enable_again_allows_login(users: UserService) -> None:
    bob = await users.create_user("bob", PASSWORD)
    await users.set_disabled(bob.id, True)
    await _login_error(users, "bob", PASSWORD)
    await users.set_disabled(bob.id, False)
    assert (await users.verify_login("bob", PASSWORD)).id == bob.id


async def test_P04_old_hash_upgraded_on_successful_login_only(
    store: MemoryStore, clock: ManualClock
) -> None:
    weak = PasswordHasher.insecure_fast_for_tests()
    old = await UserService(store, weak, clock).create_user("olga", PASSWORD)
    assert "m=8," in old.password_hash

    strong = UserService(store, PasswordHasher(), clock)
    await _login_error(strong, "olga", "wrong password")
    assert (await strong.get(old.id)).password_hash == old.password_hash

    clock.advance(5)
    user = await strong.verify_login("olga", PASSWORD)
    stored = await strong.get(old.id)
    assert stored.password_hash == user.password_hash != old.password_hash
    assert "$argon2id$v=19$m=19456,t=2,p=1$" in stored.password_hash
    assert stored.updated_at == clock.now
    # Upgrading the hash is not a password change: credentials stay valid.
    assert stored.valid_after == old.valid_after

    # Already at current parameters: no further write.
    clock.advance(5)
    await strong.verify_login("olga", PASSWORD)
    assert (await strong.get(old.id)).password_hash == stored.password_hash


async def test_P04_disabled_account_is_not_upgraded(store: MemoryStore, clock: ManualClock) -> None:
    weak = UserService(store, PasswordHasher.insecure_fast_for_tests(), clock)
    old = await weak.create_user("olga", PASSWORD)
    await weak.set_disabled(old.id, True)
    strong = UserService(store, PasswordHasher(), clock)
    await _login_error(strong, "olga", PASSWORD)
    assert (await strong.get(old.id)).password_hash == old.password_hash


# --- changes ------------------------------------------------------------------------------


async def test_disable_moves_valid_after(users: UserService, clock: ManualClock) -> None:
    bob = await users.create_user("bob", PASSWORD)
    assert bob.valid_after == 0.0
    clock.advance(60)
    disabled = await users.set_disabled(bob.id, True)
    assert disabled.disabled
    assert disabled.valid_after == clock.now
    clock.advance(60)
    enabled = await users.set_disabled(bob.id, False)
    assert not enabled.disabled
    assert enabled.valid_after == clock.now - 60


async def test_set_roles(users: UserService) -> None:
    bob = await users.create_user("bob", PASSWORD, ["user"])
    assert (await users.set_roles(bob.id, ["admin", "user"])).roles == ["admin", "user"]
    assert (await users.get(bob.id)).roles == ["admin", "user"]
    with pytest.raises(InvalidInput):
        await users.set_roles(bob.id, ["ADMIN"])
    assert (await users.get(bob.id)).roles == ["admin", "user"]


async def test_P05_change_password_requires_the_current_one(
    users: UserService, clock: ManualClock
) -> None:
    bob = await users.create_user("bob", PASSWORD)
    clock.advance(30)
    with pytest.raises(InvalidLogin):
        await users.change_password(bob.id, "not the password", "brand new password")
    unchanged = await users.get(bob.id)
    assert unchanged.password_hash == bob.password_hash
    assert unchanged.valid_after == 0.0

    changed = await users.change_password(bob.id, PASSWORD, "brand new password")
    assert changed.valid_after == clock.now
    assert (await users.verify_login("bob", "brand new password")).id == bob.id
    await _login_error(users, "bob", PASSWORD)


async def test_P05_change_password_validates_the_new_one(users: UserService) -> None:
    bob = await users.create_user("bob", PASSWORD)
    with pytest.raises(InvalidInput):
        await users.change_password(bob.id, PASSWORD, "short")
    with pytest.raises(InvalidInput):
        await users.change_password(bob.id, PASSWORD, PASSWORD)
    with pytest.raises(PasswordTooLong):
        await users.change_password(bob.id, PASSWORD, "n" * 5000)
    assert (await users.verify_login("bob", PASSWORD)).id == bob.id


async def test_reset_password_needs_no_current(users: UserService, clock: ManualClock) -> None:
    bob = await users.create_user("bob", PASSWORD)
    clock.advance(10)
    reset = await users.reset_password(bob.id, "admin chose this")
    assert reset.valid_after == clock.now
    assert (await users.verify_login("bob", "admin chose this")).id == bob.id
    with pytest.raises(InvalidInput):
        await users.reset_password(bob.id, "tiny")


async def test_invalidate_credentials_never_moves_backwards(
    users: UserService, clock: ManualClock
) -> None:
    bob = await users.create_user("bob", PASSWORD)
    clock.advance(100)
    first = (await users.invalidate_credentials(bob.id)).valid_after
    assert first == clock.now
    clock.advance(-50)  # a clock stepping back must not re-validate old credentials
    assert (await users.invalidate_credentials(bob.id)).valid_after == first
    assert (await users.get(bob.id)).valid_after == first
