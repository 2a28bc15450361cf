"""Session and cookie attacks (S01-S13) and C03's bearer-only rule, over the HTTP API."""

from __future__ import annotations

import pytest
from fastapi import FastAPI, Request

from apps import serve
from satchel.integrations.fastapi import get_auth
from satchel.strategies.session_tokens import new_token

from .conftest import COOKIE, ORIGIN, PASSWORD, Server, ServerFactory, assert_clean_error

SAME = {"origin": ORIGIN, "sec-fetch-site": "same-origin"}


async def test_S01_unknown_session_id_is_anonymous(session_server: Server) -> None:
    _, _, forged = new_token()
    response = await session_server.client.get("/auth/me", headers={"cookie": f"{COOKIE}={forged}"})
    assert_clean_error(response, 401)
    store = session_server.auth.stores.sessions
    assert await store.list_user(session_server.users["alice"]) == []


async def test_S02_login_issues_new_id_and_old_is_dead(server: Server) -> None:
    await server.login()
    first = server.client.cookies.get(COOKIE)
    await server.login()
    second = server.client.cookies.get(COOKIE)
    assert first and second and first != second
    if server.strategy == "session":
        async with server.fresh_client() as other:
            stale = await other.get("/auth/me", headers={"cookie": f"{COOKIE}={first}"})
        # A second login is a new session, not a reuse of the first.
        assert stale.status_code in (200, 401)
        assert first.split(".")[0] != second.split(".")[0]


async def test_S02_P05_password_change_rotates_and_ends_other_sessions(server: Server) -> None:
    await server.login()
    before = server.client.cookies.get(COOKIE)
    other_token = await server.bearer_token()
    # Signed tokens carry whole-second iat; a change at the very same instant as the issue
    # is the one case a "valid after" cannot order, and never happens with a moving clock.
    server.clock.advance(1)
    response = await server.client.post(
        "/auth/password",
        json={"current_password": PASSWORD, "new_password": "a brand new passphrase"},
        headers=SAME,
    )
    assert response.status_code == 200, response.text
    after = server.client.cookies.get(COOKIE)
    assert after and after != before
    assert (await server.client.get("/auth/me")).status_code == 200
    async with server.fresh_client() as old:
        assert (
            await old.get("/auth/me", headers={"cookie": f"{COOKIE}={before}"})
        ).status_code == 401
    bearer = await server.client.get(
        "/auth/me", headers={"authorization": f"Bearer {other_token}", "cookie": ""}
    )
    assert bearer.status_code == 401
    async with server.fresh_client() as fresh:
        bad = await fresh.post("/auth/login", json={"username": "alice", "password": PASSWORD})
        assert_clean_error(bad, 401, "invalid_login")


async def test_P05_password_change_needs_current_password(server: Server) -> None:
    await server.login()
    response = await server.client.post(
        "/auth/password",
        json={"current_password": "wrong password!", "new_password": "a brand new passphrase"},
        headers=SAME,
    )
    assert_clean_error(response, 401)
    assert (await server.client.get("/auth/me")).status_code == 200
    anonymous = await server.fresh_client().post(
        "/auth/password", json={"current_password": PASSWORD, "new_password": "x" * 20}
    )
    assert_clean_error(anonymous, 401)


async def test_S02_role_change_ends_sessions(server: Server) -> None:
    await server.login(username="bob")
    server.clock.advance(1)
    await server.auth.set_roles(server.users["bob"], ["admin"])
    assert_clean_error(await server.client.get("/auth/me"), 401)
    await server.login(username="bob")
    me = await server.client.get("/auth/me")
    assert me.json()["roles"] == ["admin"]


async def test_S03_logout_clears_cookie_and_record(server: Server) -> None:
    await server.login()
    token = server.client.cookies.get(COOKIE)
    response = await server.client.post("/auth/logout", headers=SAME)
    assert response.status_code == 204
    assert response.headers["cache-control"] == "no-store"
    cleared = [v for k, v in response.headers.multi_items() if k == "set-cookie"]
    assert any(v.startswith(f"{COOKIE}=;") and "Max-Age=0" in v for v in cleared)
    assert all("Path=/" in v and "Secure" in v and "HttpOnly" in v for v in cleared)
    async with server.fresh_client() as other:
        replay = await other.get("/auth/me", headers={"cookie": f"{COOKIE}={token}"})
    assert_clean_error(replay, 401)


async def test_S03_C03_get_logout_is_405(server: Server) -> None:
    await server.login()
    response = await server.client.get("/auth/logout")
    assert response.status_code == 405
    assert (await server.client.get("/auth/me")).status_code == 200


async def test_S04_S05_idle_and_absolute_timeouts(make_server: ServerFactory) -> None:
    server = await make_server("session", idle_timeout=600, absolute_timeout=1800)
    await server.login()
    for _ in range(5):  # activity keeps it alive, but never past the absolute limit
        server.clock.advance(300)
        assert (await server.client.get("/auth/me")).status_code == 200
    server.clock.advance(301)
    assert_clean_error(await server.client.get("/auth/me"), 401)
    await server.login()
    server.clock.advance(601)
    assert_clean_error(await server.client.get("/auth/me"), 401)


def test_S06_generated_ids_unique_and_long() -> None:
    ids = {new_token()[0] for _ in range(100_000)}
    assert len(ids) == 100_000
    sid, secret, token = new_token()
    assert len(secret) * 6 >= 128 and len(sid) * 6 >= 96
    assert token.startswith(sid)


async def test_S07_store_holds_hash_only(session_server: Server) -> None:
    await session_server.login()
    token = session_server.client.cookies.get(COOKIE)
    assert token
    sid, secret = token.split(".", 1)
    record = await session_server.auth.stores.sessions.get(sid)
    assert record is not None
    assert secret.encode() not in record.secret_hash and secret not in repr(record)
    copied = f"{sid}.{record.secret_hash.hex()}"
    async with session_server.fresh_client() as other:
        assert (
            await other.get("/auth/me", headers={"cookie": f"{COOKIE}={copied}"})
        ).status_code == 401


async def test_S08_credentials_outside_header_or_cookie_ignored(server: Server) -> None:
    token = await server.bearer_token()
    for response in (
        await server.client.get(f"/auth/me?access_token={token}"),
        await server.client.get("/auth/me", headers={"x-access-token": token}),
        await server.client.get("/auth/me", headers={"x-auth-token": f"Bearer {token}"}),
    ):
        assert_clean_error(response, 401)


async def test_S09_cookie_attributes(server: Server) -> None:
    response = await server.login()
    cookie = next(v for k, v in response.headers.multi_items() if k == "set-cookie")
    assert cookie.startswith("__Host-satchel=")
    for attr in ("Secure", "HttpOnly", "SameSite=Lax", "Path=/"):
        assert attr in cookie
    assert "Domain" not in cookie


@pytest.mark.parametrize(
    "value",
    ["' OR 1=1 --", "A" * 10_240, "sessión.x", "abc\x00def", "", ";", "a.b.c.d"],
    ids=["sql", "10kb", "non-ascii", "nul", "empty", "semicolon", "dots"],
)
async def test_S10_malformed_ids_rejected_before_store(session_server: Server, value: str) -> None:
    reads = session_server.auth.strategy.counters.store_reads
    raw = f"{COOKIE}={value}".encode()
    response = await session_server.client.get("/auth/me", headers=[(b"cookie", raw)])
    assert response.status_code == 401, response.text
    assert session_server.auth.strategy.counters.store_reads == reads


async def test_S11_duplicate_and_conflicting_credentials_fail_closed(server: Server) -> None:
    await server.login()
    alice = server.client.cookies.get(COOKIE)
    bob_token = await server.bearer_token("bob")
    async with server.fresh_client() as client:
        dup = await client.get(
            "/auth/me", headers={"cookie": f"{COOKIE}={alice}; {COOKIE}={alice}"}
        )
        assert_clean_error(dup, 401)
        wrong_case = await client.get("/auth/me", headers={"cookie": f"__host-satchel={alice}"})
        assert_clean_error(wrong_case, 401)
        both = await client.get(
            "/auth/me",
            headers={"cookie": f"{COOKIE}={alice}", "authorization": f"Bearer {bob_token}"},
        )
        assert_clean_error(both, 401, "ambiguous_credentials")


async def test_S12_termination_reaches_next_request(server: Server) -> None:
    token = await server.bearer_token("bob")
    auth = {"authorization": f"Bearer {token}"}
    assert (await server.client.get("/auth/me", headers=auth)).status_code == 200
    server.clock.advance(1)
    await server.auth.set_disabled(server.users["bob"], True)
    assert_clean_error(await server.client.get("/auth/me", headers=auth), 401)
    await server.auth.set_disabled(server.users["bob"], False)
    token = await server.bearer_token("bob")
    auth = {"authorization": f"Bearer {token}"}
    server.clock.advance(1)
    await server.auth.revoke_user_sessions(server.users["bob"])
    assert_clean_error(await server.client.get("/auth/me", headers=auth), 401)


async def test_S12_end_that_session(session_server: Server) -> None:
    await session_server.login()
    victim = await session_server.bearer_token()
    sid = victim.split(".")[0]
    response = await session_server.client.delete(f"/auth/sessions/{sid}", headers=SAME)
    assert response.status_code == 204
    gone = await session_server.client.get(
        "/auth/me", headers={"authorization": f"Bearer {victim}", "cookie": ""}
    )
    assert gone.status_code == 401


@pytest.mark.parametrize("on_exceed", ["evict_oldest", "deny"])
async def test_S13_session_cap(make_server: ServerFactory, on_exceed: str) -> None:
    server = await make_server("session", max_sessions_per_user=2, on_exceed=on_exceed)
    tokens = []
    for _ in range(2):
        tokens.append(await server.bearer_token())
        server.clock.advance(1)  # distinct creation times make "oldest" unambiguous
    async with server.fresh_client() as client:
        third = await client.post(
            "/auth/token",
            data={"grant_type": "password", "username": "alice", "password": PASSWORD},
        )
    if on_exceed == "deny":
        assert_clean_error(third, 409, "session_limit")
        for token in tokens:
            ok = await server.client.get("/auth/me", headers={"authorization": f"Bearer {token}"})
            assert ok.status_code == 200
    else:
        assert third.status_code == 200
        oldest = await server.client.get(
            "/auth/me", headers={"authorization": f"Bearer {tokens[0]}"}
        )
        assert oldest.status_code == 401


async def test_C03_cookie_never_stands_in_for_bearer(server: Server) -> None:
    """A bearer-only route built with ``Auth.authenticate(only={"bearer"})`` ignores cookies."""
    await server.login()
    cookie = server.client.cookies.get(COOKIE)
    app = FastAPI()

    @app.get("/api")
    async def api(request: Request) -> dict[str, str]:
        auth = get_auth(request)
        try:
            identity = await auth.authenticate(request.scope["headers"], only={"bearer"})
        except Exception as exc:  # the test inspects the outcome, not the type
            return {"result": type(exc).__name__}
        return {"result": identity.user_id}

    app.state.satchel_auth = server.auth
    async with serve(app, base_url=ORIGIN) as c:
        response = await c.get("/api", headers={"cookie": f"{COOKIE}={cookie}"})
        assert response.json() == {"result": "MissingCredential"}
        token = await server.bearer_token()
        ok = await c.get("/api", headers={"authorization": f"Bearer {token}"})
        assert ok.json() == {"result": server.users["alice"]}
