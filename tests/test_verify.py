"""satchel.verify: a verifier that needs only the JWKS URL and, optionally, the Redis channel.

The JWKS is served by a real HTTP server (a thread here, ``satchel serve`` in the
end-to-end test), and revocations travel over the real Redis.
"""

from __future__ import annotations

import json
import secrets
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest

from satchel.clock import ManualClock, system_clock
from satchel.errors import (
    ConfigurationError,
    ExpiredCredential,
    InvalidCredential,
    InvalidToken,
    StoreUnavailable,
)
from satchel.jose.claims import ClaimsPolicy, build_claims, sign
from satchel.jose.jwk import HS256Key, SigningKey, generate_key
from satchel.jose.jws import UnknownKey
from satchel.jose.keyset import KeySet
from satchel.revocation import redis_bus
from satchel.revocation.base import RevocationEvent, RevocationKind
from satchel.verify import Verifier, cache_max_age

ISSUER, AUDIENCE = "https://auth.test", "api"
POLICY = ClaimsPolicy(issuer=ISSUER, audience=AUDIENCE)


class JWKSServer:
    """Serves ``body`` with ``status`` on ``/jwks``; counts the requests."""

    def __init__(self) -> None:
        self.body = b'{"keys":[]}'
        self.status = 200
        self.cache_control: str | None = None
        self.hits = 0
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                outer.hits += 1
                self.send_response(outer.status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(outer.body)))
                if outer.cache_control is not None:
                    self.send_header("Cache-Control", outer.cache_control)
                self.end_headers()
                self.wfile.write(outer.body)

            def log_message(self, *args: Any) -> None:
                return None

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.httpd.server_address[1]}/jwks"

    def publish(self, *keys: SigningKey, extra: list[dict[str, Any]] | None = None) -> None:
        jwks = [k.public_jwk() for k in keys] + (extra or [])
        self.body = json.dumps({"keys": jwks}).encode()

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def jwks_server() -> Iterator[JWKSServer]:
    server = JWKSServer()
    yield server
    server.close()


def mint(
    key: SigningKey, now: float, *, sid: str | None = None, ttl: float = 300, **kw: Any
) -> str:
    claims = build_claims(
        POLICY,
        sub="user-1",
        now=now,
        ttl=ttl,
        roles=["admin"],
        sid=sid or secrets.token_urlsafe(16),
        extra={"preferred_username": "alice", "auth_time": now - 10, **kw},
    )
    return sign(KeySet(key), POLICY, claims)


async def test_verifies_with_only_the_jwks(jwks_server: JWKSServer) -> None:
    clock = ManualClock()
    key = generate_key("EdDSA")
    jwks_server.publish(key)
    verifier = Verifier(jwks_server.url, issuer=ISSUER, audience=AUDIENCE, clock=clock)
    await verifier.start()
    token = mint(key, clock())
    identity = await verifier.verify(token)
    assert (identity.user_id, identity.username, identity.roles) == ("user-1", "alice", {"admin"})
    assert identity.strategy == "hybrid" and identity.session_id
    await verifier.verify(token)  # cached
    clock.advance(300 + POLICY.leeway + 1)
    with pytest.raises(ExpiredCredential):
        await verifier.verify(token)
    other_issuer = Verifier(jwks_server.url, issuer="https://evil", audience=AUDIENCE, clock=clock)
    await other_issuer.start()
    with pytest.raises(InvalidToken):
        await other_issuer.verify(mint(key, clock()))
    await verifier.close()


async def test_unknown_kid_refetches_with_a_rate_limit(jwks_server: JWKSServer) -> None:
    clock = ManualClock()
    old, new, never = generate_key("EdDSA"), generate_key("ES256"), generate_key("EdDSA")
    jwks_server.publish(old)
    verifier = Verifier(
        jwks_server.url, issuer=ISSUER, audience=AUDIENCE, clock=clock, refetch_interval=30
    )
    await verifier.start()
    assert jwks_server.hits == 1
    clock.advance(31)
    jwks_server.publish(old, new)  # the server rotated its key
    await verifier.verify(mint(new, clock()))
    assert jwks_server.hits == 2
    # Made-up kids cannot turn into a flood of fetches.
    for _ in range(5):
        with pytest.raises(UnknownKey):
            await verifier.verify(mint(never, clock()))
    assert jwks_server.hits == 2
    await verifier.close()


async def test_F14_the_jwks_is_refetched_within_its_cache_max_age(
    jwks_server: JWKSServer,
) -> None:
    clock = ManualClock()
    old, new = generate_key("EdDSA"), generate_key("EdDSA")
    jwks_server.publish(old)
    jwks_server.cache_control = "public, max-age=40"
    verifier = Verifier(jwks_server.url, issuer=ISSUER, audience=AUDIENCE, clock=clock)
    assert verifier.max_age == 60  # the auth server's default JWKS lifetime, not longer
    await verifier.start()
    token = mint(old, clock(), ttl=3600)
    clock.advance(40)
    await verifier.verify(token)
    assert jwks_server.hits == 1
    # The server stored a new key; a verifier honouring the header learns it in time.
    jwks_server.publish(old, new)
    clock.advance(1)
    await verifier.verify(token)
    deadline = time.monotonic() + 3
    while jwks_server.hits < 2 or verifier.keyset.get(new.kid, clock()) is None:
        assert time.monotonic() < deadline, "no background refresh"
        await _tick()
    await verifier.close()


@pytest.mark.parametrize(
    ("header", "seconds"),
    [
        (None, None),
        ("", None),
        ("public", None),
        ("public, max-age=60", 60.0),
        ("max-age=0", 0.0),
        ("Public, MAX-AGE=30, must-revalidate", 30.0),
        ("public, s-maxage=300", None),
        ("no-store", 0.0),
        ("max-age=60, no-cache", 0.0),
        ("max-age=abc", None),
    ],
)
def test_cache_max_age_reads_cache_control(header: str | None, seconds: float | None) -> None:
    assert cache_max_age(header) == seconds


async def test_last_good_key_set_is_kept_when_a_fetch_fails(jwks_server: JWKSServer) -> None:
    clock = ManualClock()
    key = generate_key("EdDSA")
    jwks_server.publish(key)
    verifier = Verifier(jwks_server.url, issuer=ISSUER, audience=AUDIENCE, clock=clock)
    await verifier.start()
    for status, body in ((500, b"oops"), (200, b"not json"), (200, b'{"keys": 1}')):
        jwks_server.status, jwks_server.body = status, body
        assert await verifier.refresh_keys(force=True) is False
        await verifier.verify(mint(key, clock()))
    await verifier.close()


async def test_symmetric_keys_in_a_jwks_are_ignored(jwks_server: JWKSServer) -> None:
    secret_key = HS256Key("hs", b"s" * 32)
    jwk = {"kty": "oct", "kid": "hs", "alg": "HS256", "k": "c" * 43}
    jwks_server.publish(extra=[jwk])
    verifier = Verifier(jwks_server.url, issuer=ISSUER, audience=AUDIENCE)
    await verifier.start()
    with pytest.raises(UnknownKey):
        await verifier.verify(mint(secret_key, system_clock()))
    with pytest.raises(ConfigurationError):
        Verifier("file:///etc/passwd", issuer=ISSUER, audience=AUDIENCE)


async def test_start_fails_closed_without_a_jwks() -> None:
    verifier = Verifier("http://127.0.0.1:9/jwks", issuer=ISSUER, audience=AUDIENCE)
    with pytest.raises(StoreUnavailable):
        await verifier.start()


@pytest.mark.parametrize("deployment", ["redis", "redis-cluster"])
async def test_R02_revocations_arrive_over_the_redis_channel(
    jwks_server: JWKSServer, run_id: str, deployment: str, request: pytest.FixtureRequest
) -> None:
    if deployment == "redis":
        redis_url: str = request.getfixturevalue("redis_url")
    else:
        redis_url = request.getfixturevalue("redis_cluster").url
    key = generate_key("EdDSA")
    jwks_server.publish(key)
    prefix = f"verify-{run_id}"
    before = mint(key, time.time() - 5)
    verifier = Verifier(
        jwks_server.url, issuer=ISSUER, audience=AUDIENCE, redis_url=redis_url, prefix=prefix
    )
    await verifier.start()
    # The auth server's side of the channel, as make_bus builds it for that deployment.
    publisher = redis_bus(redis_url, prefix)
    await publisher.start()
    try:
        # Issued before the subscription: a revocation of it may have been missed.
        with pytest.raises(InvalidToken, match="predates"):
            await verifier.verify(before)
        time.sleep(1.01)  # iat has whole-second resolution
        sid = secrets.token_urlsafe(16)
        token = mint(key, time.time(), sid=sid)
        await verifier.verify(token)
        await publisher.publish(RevocationEvent(RevocationKind.SESSION, sid, time.time() + 600))
        deadline = time.monotonic() + 2
        while True:
            try:
                await verifier.verify(token)
            except InvalidCredential:
                break
            assert time.monotonic() < deadline, "revocation not applied"
            await _tick()
    finally:
        await publisher.close()
        await verifier.close()
    with pytest.raises(StoreUnavailable):
        await verifier.verify(token)  # channel closed: fail closed


async def _tick() -> None:
    import asyncio

    await asyncio.sleep(0.01)


# --- end to end: a real auth server and a verifier in another process --------------------

VERIFIER_SCRIPT = textwrap.dedent(
    """
    import asyncio, json, sys
    from satchel.verify import Verifier, cache_max_age

    async def main():
        url, issuer, audience, redis_url, prefix = sys.argv[1:6]
        verifier = Verifier(url, issuer=issuer, audience=audience,
                            redis_url=redis_url, prefix=prefix)
        await verifier.start()
        print("ready", flush=True)
        while True:
            line = await asyncio.to_thread(sys.stdin.readline)
            if not line:
                break
            try:
                identity = await verifier.verify(line.strip())
                out = {"ok": True, "user": identity.username, "sid": identity.session_id}
            except Exception as exc:
                out = {"ok": False, "error": getattr(exc, "code", type(exc).__name__)}
            print(json.dumps(out), flush=True)
        await verifier.close()

    asyncio.run(main())
    """
)


@pytest.mark.slow
@pytest.mark.redis
@pytest.mark.postgres
def test_verifier_in_another_process_uses_only_jwks_and_channel(
    tmp_path: Path, run_id: str, redis_url: str, database_url: str
) -> None:
    from procs import satchel_cli, start_servers
    from test_hybrid_multiprocess import PASSWORD, USER, drop_deployment, hybrid_env

    tag = f"hv{run_id}".lower()
    env = hybrid_env(database_url, redis_url, tag)
    try:
        done = satchel_cli(["users", "add", USER, "--password-stdin"], env, PASSWORD + "\n")
        assert done.returncode == 0, done.stderr
        (server,) = start_servers([env], ["A"])
        script = tmp_path / "verifier.py"
        script.write_text(VERIFIER_SCRIPT)
        proc = subprocess.Popen(
            [
                sys.executable,
                str(script),
                f"{server.url}/.well-known/jwks.json",
                "satchel",
                "satchel",
                redis_url,
                tag,
            ],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        try:
            assert proc.stdout is not None and proc.stdin is not None
            assert proc.stdout.readline().strip() == "ready"
            time.sleep(1.01)  # tokens issued after the verifier subscribed (whole seconds)

            def ask(token: str) -> dict[str, Any]:
                assert proc.stdin is not None and proc.stdout is not None
                proc.stdin.write(token + "\n")
                proc.stdin.flush()
                return dict(json.loads(proc.stdout.readline()))

            pair = httpx.post(
                f"{server.url}/auth/token",
                data={"grant_type": "password", "username": USER, "password": PASSWORD},
                timeout=10,
            ).json()
            access = pair["access_token"]
            answer = ask(access)
            assert answer["ok"] is True and answer["user"] == USER
            assert ask(pair["refresh_token"])["ok"] is False
            revoked = httpx.delete(
                f"{server.url}/auth/sessions/{answer['sid']}",
                headers={"Authorization": f"Bearer {access}"},
                timeout=10,
            )
            assert revoked.status_code == 204
            deadline = time.monotonic() + 2
            while (result := ask(access))["ok"]:
                assert time.monotonic() < deadline, "revocation not applied"
                time.sleep(0.01)
            assert result["error"] == "invalid_token"
        finally:
            proc.kill()
            proc.wait(5)
            server.stop()
    finally:
        drop_deployment(database_url, redis_url, tag)
