"""End to end through the Auth facade: session strategy, cookie + bearer transports."""

from __future__ import annotations

import logging
import secrets

import pytest

from satchel.accounts.passwords import PasswordHasher
from satchel.accounts.users import UserService
from satchel.auth import Auth
from satchel.clock import ManualClock
from satchel.errors import (
    AmbiguousCredentials,
    ConfigurationError,
    InvalidCredential,
    InvalidLogin,
    MissingCredential,
    NotFound,
)
from satchel.revocation.base import LocalBus
from satchel.stores.memory import MemoryStore
from satchel.strategies import LoginContext, SessionStrategy
from satchel.strategies.session_policy import SessionPolicy
from satchel.transports import BearerTransport, CookieTransport
from satchel.transports.csrf import CSRFProtect

PASSWORD = "correct horse battery staple"


@pytest.fixture
async def auth() -> Auth:
    clock = ManualClock()
    store = MemoryStore()
    users = UserService(store, PasswordHasher.insecure_fast_for_tests(), clock=clock)
    strategy = SessionStrategy(store, store, SessionPolicy(), clock=clock, bus=LocalBus())
    instance = Auth(
        strategy=strategy,
        transports=[CookieTransport(), BearerTransport()],
        csrf=CSRFProtect(secrets.token_bytes(32)),
        users=users,
        clock=clock,
    )
    await instance.start()
    await users.create_user("alice", PASSWORD, ["user"])
    await users.create_user("bob", PASSWORD, ["admin"])
    return instance


def cookie(token: str) -> list[tuple[bytes, bytes]]:
    return [(b"cookie", f"__Host-satchel={token}".encode())]


def bearer(token: str) -> list[tuple[bytes, bytes]]:
    return [(b"authorization", f"Bearer {token}".encode())]


async def test_login_then_authenticate_over_cookie_and_bearer(auth: Auth) -> None:
    result = await auth.login("Alice", PASSWORD, LoginContext(ip="198.51.100.1"))
    assert result.identity.username == "alice"
    token = result.credentials.access_token
    identity, transport = await auth.resolve(cookie(token))
    assert transport.name == "cookie" and identity.user_id == result.identity.user_id
    identity, transport = await auth.resolve(bearer(token))
    assert transport.name == "bearer" and identity.session_id == result.identity.session_id
    # The same credential on both carriers is not ambiguous.
    assert (await auth.authenticate(cookie(token) + bearer(token))).username == "alice"


async def test_login_headers_per_transport(auth: Auth) -> None:
    result = await auth.login("alice", PASSWORD)
    token = result.credentials.access_token
    set_cookie = auth.login_headers(result, "cookie")
    assert set_cookie[0] == (
        "set-cookie",
        f"__Host-satchel={token}; Path=/; Secure; HttpOnly; SameSite=Lax",
    )
    remembered = await auth.login("alice", PASSWORD, LoginContext(remember=True))
    assert "; Max-Age=2592000; " in auth.login_headers(remembered, "cookie")[0][1]
    assert auth.login_headers(result, "bearer") == [("cache-control", "no-store")]
    assert ("cache-control", "no-store") in auth.logout_headers("cookie")
    with pytest.raises(ConfigurationError):
        auth.login_headers(result, "carrier-pigeon")


@pytest.mark.parametrize(
    ("username", "password"),
    [("alice", "wrong password entirely"), ("nobody", PASSWORD)],
)
async def test_P01_bad_login_is_uniform_and_issues_nothing(
    auth: Auth, username: str, password: str, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.DEBUG), pytest.raises(InvalidLogin) as info:
        await auth.login(username, password)
    assert info.value.detail == "Invalid username or password."
    assert await auth.strategy.list_all_sessions() == []
    assert password not in caplog.text


async def test_disabled_account_cannot_log_in(auth: Auth) -> None:
    alice = await auth.users.get_by_name("alice")
    await auth.users.set_disabled(alice.id, True)
    with pytest.raises(InvalidLogin):
        await auth.login("alice", PASSWORD)


async def test_S11_cookie_and_bearer_naming_different_users_is_ambiguous(auth: Auth) -> None:
    alice = (await auth.login("alice", PASSWORD)).credentials.access_token
    bob = (await auth.login("bob", PASSWORD)).credentials.access_token
    with pytest.raises(AmbiguousCredentials):
        await auth.authenticate(cookie(alice) + bearer(bob))
    with pytest.raises(AmbiguousCredentials):
        await auth.authenticate(bearer(alice) + cookie(bob))


async def test_no_credential_is_missing_and_bad_one_invalid(auth: Auth) -> None:
    with pytest.raises(MissingCredential):
        await auth.authenticate([(b"host", b"example.test")])
    with pytest.raises(InvalidCredential):
        await auth.authenticate(bearer("not-a-session-token"))
    with pytest.raises(InvalidCredential):
        await auth.authenticate(cookie("a") + cookie("b"))


async def test_C03_bearer_only_route_ignores_cookie(auth: Auth) -> None:
    token = (await auth.login("alice", PASSWORD)).credentials.access_token
    with pytest.raises(MissingCredential):
        await auth.authenticate(cookie(token), only=["bearer"])
    assert (await auth.authenticate(bearer(token), only=["bearer"])).username == "alice"


async def test_S03_logout_ends_the_session(auth: Auth) -> None:
    result = await auth.login("alice", PASSWORD)
    token = result.credentials.access_token
    identity = await auth.authenticate(cookie(token))
    await auth.logout(identity)
    with pytest.raises(InvalidCredential):
        await auth.authenticate(cookie(token))
    assert await auth.list_sessions(identity.user_id) == []


async def test_S02_each_login_gets_a_new_session(auth: Auth) -> None:
    first = await auth.login("alice", PASSWORD)
    second = await auth.login("alice", PASSWORD)
    assert first.identity.session_id != second.identity.session_id
    assert first.credentials.access_token != second.credentials.access_token
    sessions = await auth.list_sessions(first.identity.user_id)
    assert {s.id for s in sessions} == {first.identity.session_id, second.identity.session_id}


async def test_revoke_other_sessions_keeps_current(auth: Auth) -> None:
    current = await auth.login("alice", PASSWORD)
    others = [await auth.login("alice", PASSWORD) for _ in range(2)]
    identity = await auth.authenticate(bearer(current.credentials.access_token))
    ended = await auth.revoke_other_sessions(identity)
    assert sorted(ended) == sorted(o.identity.session_id or "" for o in others)
    for other in others:
        with pytest.raises(InvalidCredential):
            await auth.authenticate(bearer(other.credentials.access_token))
    assert (await auth.authenticate(bearer(current.credentials.access_token))).username == "alice"


async def test_S12_admin_revoke_all_ends_every_session(auth: Auth) -> None:
    results = [await auth.login("alice", PASSWORD) for _ in range(3)]
    for r in results:
        await auth.authenticate(cookie(r.credentials.access_token))  # now cached
    admin_token = (await auth.login("bob", PASSWORD)).credentials.access_token
    admin = await auth.authenticate(bearer(admin_token))
    await auth.revoke_user_sessions(results[0].identity.user_id, actor=admin)
    for r in results:
        with pytest.raises(InvalidCredential):
            await auth.authenticate(cookie(r.credentials.access_token))
    # The administrator's own session is untouched, and alice can log in again.
    assert (await auth.authenticate(bearer(admin_token))).username == "bob"
    fresh = await auth.login("alice", PASSWORD)
    assert (await auth.authenticate(cookie(fresh.credentials.access_token))).username == "alice"


async def test_revoke_session_of_another_user_is_not_found(auth: Auth) -> None:
    alice = await auth.login("alice", PASSWORD)
    bob = await auth.login("bob", PASSWORD)
    with pytest.raises(NotFound):
        await auth.revoke_session(alice.identity.session_id or "", user_id=bob.identity.user_id)
    assert (await auth.authenticate(cookie(alice.credentials.access_token))).username == "alice"
    await auth.revoke_session(alice.identity.session_id or "", user_id=alice.identity.user_id)
    with pytest.raises(InvalidCredential):
        await auth.authenticate(cookie(alice.credentials.access_token))


async def test_find_credential_is_none_for_anonymous_and_strict_otherwise(auth: Auth) -> None:
    token = (await auth.login("alice", PASSWORD)).credentials.access_token
    assert auth.find_credential([(b"host", b"example.test")]) is None
    found = auth.find_credential(bearer(token))
    assert found is not None and found[0].name == "bearer" and found[1] == token
    other = (await auth.login("bob", PASSWORD)).credentials.access_token
    with pytest.raises(AmbiguousCredentials):
        auth.find_credential(cookie(token) + bearer(other))
    with pytest.raises(MissingCredential):
        auth.extract([])
