"""The composition API: an Auth built from public parts has the same protections as one
built from settings, and the glue reaches every service as a typed member."""

from __future__ import annotations

import secrets
import textwrap
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from apps import serve
from satchel import Auth, ConfigurationError, PasswordHasher, UserService
from satchel.integrations.fastapi import install
from satchel.revocation.base import LocalBus
from satchel.stores import MemoryStore
from satchel.strategies import SessionPolicy, SessionStrategy, SupportsRefresh, SupportsSessions
from satchel.transports import BearerTransport, CookieTransport, CSRFProtect

PASSWORD = "correct horse battery staple"


def parts_auth(store: MemoryStore, hasher: PasswordHasher) -> Auth:
    """What an application writes when it composes satchel itself (no Settings)."""
    return Auth(
        strategy=SessionStrategy(store, store, SessionPolicy(), bus=LocalBus()),
        transports=[CookieTransport(secure=False), BearerTransport()],
        users=UserService(store, hasher),
        csrf=CSRFProtect(secrets.token_bytes(32), secure=False),
    )


@pytest.fixture
async def client() -> AsyncIterator[httpx.AsyncClient]:
    hasher = PasswordHasher.insecure_fast_for_tests()
    store = MemoryStore()
    auth = parts_auth(store, hasher)
    await auth.users.create_user("alice", PASSWORD)
    app = FastAPI()
    install(app, auth=auth)
    async with serve(app, base_url="http://testserver") as c:
        yield c
    hasher.close()


async def test_cross_site_form_login_is_refused(client: httpx.AsyncClient) -> None:
    response = await client.post(
        "/auth/login",
        data={"username": "alice", "password": PASSWORD},
        headers={"Origin": "https://evil.example", "Sec-Fetch-Site": "cross-site"},
    )
    assert response.status_code == 403
    assert response.json()["error"] == "csrf_failed"
    assert "set-cookie" not in response.headers


async def test_same_origin_json_login_works(client: httpx.AsyncClient) -> None:
    response = await client.post(
        "/auth/login",
        json={"username": "alice", "password": PASSWORD},
        headers={"Origin": "http://testserver", "Sec-Fetch-Site": "same-origin"},
    )
    assert response.status_code == 200, response.text
    assert response.json()["username"] == "alice"


async def test_thirty_wrong_passwords_reach_429(client: httpx.AsyncClient) -> None:
    statuses = []
    for _ in range(30):
        response = await client.post(
            "/auth/token",
            data={"grant_type": "password", "username": "alice", "password": "wrong password"},
        )
        statuses.append(response.status_code)
    assert statuses[0] == 400  # invalid_grant (RFC 6749 §5.2)
    assert 429 in statuses
    # Once throttled, the right password gets the same answer (the lockout reveals nothing).
    response = await client.post(
        "/auth/token", data={"grant_type": "password", "username": "alice", "password": PASSWORD}
    )
    assert response.status_code == 429
    assert int(response.headers["retry-after"]) >= 1


def test_cookie_transport_without_csrf_is_a_configuration_error() -> None:
    store = MemoryStore()
    with pytest.raises(ConfigurationError) as caught:
        Auth(
            strategy=SessionStrategy(store, store),
            transports=[CookieTransport()],
            users=UserService(store, PasswordHasher.insecure_fast_for_tests()),
        )
    message = str(caught.value.detail)
    assert "CSRF" in message and "\n" not in message


def test_a_throttle_is_always_there_and_bearer_needs_no_csrf() -> None:
    store = MemoryStore()
    auth = Auth(
        strategy=SessionStrategy(store, store),
        transports=[BearerTransport()],
        users=UserService(store, PasswordHasher.insecure_fast_for_tests()),
    )
    assert auth.throttle is not None
    assert auth.csrf is None
    assert auth.keeps_sessions and not auth.can_refresh


def test_capabilities_are_typed() -> None:
    from satchel.strategies import HybridStrategy, JWTStrategy

    assert issubclass(SessionStrategy, SupportsSessions)
    assert not issubclass(SessionStrategy, SupportsRefresh)
    assert issubclass(HybridStrategy, SupportsRefresh)
    assert issubclass(HybridStrategy, SupportsSessions)
    assert not issubclass(JWTStrategy, SupportsSessions)


async def test_library_doc_from_parts_example_runs(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The "From parts" block of docs/library.md, executed as written."""
    text = (Path(__file__).resolve().parents[1] / "docs" / "library.md").read_text()
    block = text.split("### From parts", 1)[1].split("```python", 1)[1].split("```", 1)[0]
    monkeypatch.chdir(tmp_path)
    code = "async def build():\n" + textwrap.indent(block, "    ") + "    return auth\n"
    namespace: dict[str, Any] = {}
    exec(compile(code, "docs/library.md", "exec"), namespace)
    auth = await namespace["build"]()
    try:
        assert auth.csrf is not None and auth.throttle is not None
        await auth.users.create_user("alice", PASSWORD)
        result = await auth.login("alice", PASSWORD)
        assert result.identity.username == "alice"
    finally:
        await auth.close()


async def test_install_takes_the_apps_own_user_store(tmp_path: Path) -> None:
    """install(app, settings, users=...) builds the Auth over the application's user store:
    accounts come from it, satchel's own store keeps sessions and keys."""
    from satchel import Settings

    own = MemoryStore()  # stands for the application's table: any UserStore
    hasher = PasswordHasher.insecure_fast_for_tests()
    await UserService(own, hasher).create_user("alice", PASSWORD)
    hasher.close()
    app = FastAPI()
    settings = Settings(store=f"sqlite:///{tmp_path / 'satchel.db'}", transports=["bearer"])
    install(app, settings, users=own)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as c:
            token = await c.post(
                "/auth/token",
                data={"grant_type": "password", "username": "alice", "password": PASSWORD},
            )
            assert token.status_code == 200, token.text
            me = await c.get(
                "/auth/me", headers={"Authorization": f"Bearer {token.json()['access_token']}"}
            )
            assert me.json()["username"] == "alice"


def test_install_refuses_users_and_auth_together() -> None:
    store = MemoryStore()
    auth = Auth(
        strategy=SessionStrategy(store, store),
        transports=[BearerTransport()],
        users=UserService(store, PasswordHasher.insecure_fast_for_tests()),
    )
    with pytest.raises(ConfigurationError):
        install(FastAPI(), auth=auth, users=store)
