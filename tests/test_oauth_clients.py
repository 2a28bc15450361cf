"""A stock OAuth 2.0 client library against a real ``satchel serve``: authlib's httpx client
runs the password grant (RFC 6749 §4.3) and the refresh grant (§6) at ``/auth/token`` as it
would against any authorization server, and reads satchel's errors as OAuth errors."""

from __future__ import annotations

import warnings
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from authlib.integrations.base_client import OAuthError

from procs import SatchelServer, satchel_cli

with warnings.catch_warnings():
    # authlib >= 1.9 prefers the httpx2 package and warns when it runs on httpx itself.
    warnings.filterwarnings("ignore", "The httpx module is deprecated")
    from authlib.integrations.httpx_client import AsyncOAuth2Client

PASSWORD = "correct horse battery"

pytestmark = pytest.mark.slow


def start(tmp_path: Path, strategy: str) -> SatchelServer:
    store = f"sqlite:///{tmp_path / f'{strategy}.db'}"
    env = {"SATCHEL_STORE": store, "SATCHEL_STRATEGY": strategy, "SATCHEL_REFRESH_GRACE": "0"}
    added = satchel_cli(["users", "add", "alice", "--password-stdin"], env, PASSWORD + "\n")
    assert added.returncode == 0, added.stderr
    server = SatchelServer(env, strategy).start()
    try:
        server.wait_ready()
    except BaseException:
        server.stop()
        raise
    return server


@pytest.fixture(scope="module")
def servers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, SatchelServer]]:
    tmp = tmp_path_factory.mktemp("oauth")
    started: dict[str, SatchelServer] = {}
    try:
        for strategy in ("hybrid", "jwt", "session"):
            started[strategy] = start(tmp, strategy)
        yield started
    finally:
        for server in started.values():
            server.stop()


async def me(server: SatchelServer, client: AsyncOAuth2Client) -> httpx.Response:
    # authlib puts the current access token in the Authorization header itself.
    return await client.get(f"{server.url}/auth/me")


@pytest.mark.parametrize("strategy", ["hybrid", "jwt"])
async def test_password_and_refresh_grants_with_authlib(
    servers: dict[str, SatchelServer], strategy: str
) -> None:
    server = servers[strategy]
    url = f"{server.url}/auth/token"
    async with AsyncOAuth2Client(client_id="satchel-tests") as client:
        first = await client.fetch_token(url, username="alice", password=PASSWORD)
        assert first["token_type"] == "Bearer"
        lifetime = 300 if strategy == "hybrid" else 900  # the default access token lifetimes
        assert lifetime - 1 <= first["expires_in"] <= lifetime
        assert first["refresh_token"]
        answer = await me(server, client)
        assert answer.status_code == 200 and answer.json()["username"] == "alice"

        second = await client.refresh_token(url, refresh_token=first["refresh_token"])
        assert second["access_token"] != first["access_token"]
        assert second["refresh_token"] != first["refresh_token"]
        answer = await me(server, client)
        assert answer.status_code == 200 and answer.json()["strategy"] == strategy

        # The retired refresh token again: authlib reports invalid_grant, and the reuse has
        # ended the session / token family (RFC 9700 §4.14.2), so the newest one is refused.
        with pytest.raises(OAuthError) as reused:
            await client.refresh_token(url, refresh_token=first["refresh_token"])
        assert reused.value.error == "invalid_grant"
        with pytest.raises(OAuthError) as ended:
            await client.refresh_token(url, refresh_token=second["refresh_token"])
        assert ended.value.error == "invalid_grant"


async def test_authlib_reads_wrong_passwords_and_secrets_as_oauth_errors(
    servers: dict[str, SatchelServer],
) -> None:
    url = f"{servers['hybrid'].url}/auth/token"
    async with AsyncOAuth2Client() as client:
        with pytest.raises(OAuthError) as wrong:
            await client.fetch_token(url, username="alice", password="not the password")
        assert wrong.value.error == "invalid_grant"
    # A confidential client (HTTP Basic, authlib's default with a secret) is told at once.
    async with AsyncOAuth2Client(client_id="app", client_secret="s3cret") as client:
        with pytest.raises(OAuthError) as secret:
            await client.fetch_token(url, username="alice", password=PASSWORD)
        assert secret.value.error == "invalid_client"


async def test_session_strategy_with_authlib(servers: dict[str, SatchelServer]) -> None:
    server = servers["session"]
    url = f"{server.url}/auth/token"
    async with AsyncOAuth2Client() as client:
        token = await client.fetch_token(url, username="alice", password=PASSWORD)
        # The true lifetime without use: the 30-minute idle time-out, not the 12-hour one.
        assert 1799 <= token["expires_in"] <= 1800
        assert "refresh_token" not in token
        answer = await me(server, client)
        assert answer.status_code == 200 and answer.json()["strategy"] == "session"
        with pytest.raises(OAuthError) as refresh:
            await client.refresh_token(url, refresh_token="not-a-refresh-token")
        assert refresh.value.error == "unsupported_grant_type"
