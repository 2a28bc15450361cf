"""Application claims (UserRecord.claims and email): the rules, and their way onto identities
and tokens in every strategy and in satchel.verify."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from satchel.audit import AuditEvent, AuditLog
from satchel.clock import ManualClock
from satchel.errors import ConfigurationError
from satchel.jose import claims as claims_mod
from satchel.jose.claims import ClaimsPolicy
from satchel.keys.manager import KeyManager
from satchel.revocation.base import LocalBus
from satchel.stores.base import UserRecord
from satchel.stores.memory import MemoryStore
from satchel.strategies.application_claims import (
    MAX_APPLICATION_CLAIMS_BYTES,
    RESERVED_CLAIMS,
    application_claims,
)
from satchel.strategies.base import LoginContext
from satchel.strategies.hybrid import HybridStrategy
from satchel.strategies.jwt import JWTStrategy
from satchel.strategies.jwt_refresh import RefreshingJWTStrategy
from satchel.strategies.session import SessionStrategy
from satchel.verify import Verifier

POLICY = ClaimsPolicy(issuer="https://auth.test", audience="api")
CLAIMS: dict[str, Any] = {"tenant_id": 7, "plan": {"name": "pro", "seats": [1, 2.5, None, True]}}
EMAIL = "alice@example.test"
EXPECTED = {**CLAIMS, "email": EMAIL}


def user_record(**fields: Any) -> UserRecord:
    user = UserRecord(
        id="u1", username="alice", username_key="alice", password_hash="x", roles=["staff"]
    )
    for name, value in fields.items():
        setattr(user, name, value)
    return user


async def stored_user(store: MemoryStore, **fields: Any) -> UserRecord:
    user = user_record(claims=dict(CLAIMS), email=EMAIL, **fields)
    await store.create_user(user)
    return user


def nested(depth: int) -> Any:
    value: Any = 1
    for _ in range(depth):
        value = [value]
    return value


# --- the rules ----------------------------------------------------------------------------


def test_claims_and_email_make_the_application_claims() -> None:
    assert dict(application_claims(user_record())) == {}
    assert dict(application_claims(user_record(email=EMAIL))) == {"email": EMAIL}
    assert dict(application_claims(user_record(claims=CLAIMS))) == CLAIMS
    assert dict(application_claims(user_record(claims=CLAIMS, email=EMAIL))) == EXPECTED
    assert application_claims(user_record(claims={"deep": nested(8)}))["deep"] == nested(8)
    # Not a copy of the row that the caller could change behind the token's back.
    row = user_record(claims={"tenant_id": 7})
    out = application_claims(row)
    row.claims["tenant_id"] = 8
    assert out["tenant_id"] == 7


@pytest.mark.parametrize("name", sorted(RESERVED_CLAIMS))
def test_reserved_names_are_refused_by_name(name: str) -> None:
    with pytest.raises(ConfigurationError, match=f"'{name}' is reserved"):
        application_claims(user_record(claims={"tenant_id": 7, name: "x"}))


def test_reserved_names_cover_what_satchel_and_the_standards_set() -> None:
    satchel_sets = {"iss", "sub", "aud", "exp", "nbf", "iat", "jti", "sid", "roles"}
    satchel_sets |= {"preferred_username", "auth_time", "email"}
    standards = {"typ", "cnf", "amr", "acr", "azp", "scope", "client_id", "act", "nonce"}
    assert satchel_sets | standards <= RESERVED_CLAIMS
    assert "tenant_id" not in RESERVED_CLAIMS and "name" not in RESERVED_CLAIMS


@pytest.mark.parametrize(
    "value",
    [
        (1, 2),
        {1, 2},
        b"bytes",
        float("nan"),
        float("inf"),
        10**25,
        pytest.param(object(), id="object"),
        {"a": (1,)},
        {1: "integer key"},
        "\ud800",
        [nested(8)],
        [1, [2, {"x": {3}}]],
    ],
    ids=repr,
)
def test_values_that_are_not_json_are_refused_by_name(value: object) -> None:
    with pytest.raises(ConfigurationError, match="'bad' is not a JSON value"):
        application_claims(user_record(claims={"ok": 1, "bad": value}))


@pytest.mark.parametrize("name", ["", "x" * 257, 5, None, "\ud800"])
def test_bad_names_are_refused(name: object) -> None:
    with pytest.raises(ConfigurationError, match="names must be strings"):
        application_claims(user_record(claims={name: 1}))


def test_size_and_shape_limits() -> None:
    big = {"blob": "x" * MAX_APPLICATION_CLAIMS_BYTES}
    just_fits = {"blob": "x" * (MAX_APPLICATION_CLAIMS_BYTES - len('{"blob":""}'))}
    assert application_claims(user_record(claims=just_fits)) == just_fits
    with pytest.raises(ConfigurationError, match=f"exceed {MAX_APPLICATION_CLAIMS_BYTES} bytes"):
        application_claims(user_record(claims=big))
    with pytest.raises(ConfigurationError, match="JSON object"):
        application_claims(user_record(claims=[("tenant_id", 7)]))
    for email in ("", 7, "x" * 400):
        with pytest.raises(ConfigurationError, match="email"):
            application_claims(user_record(email=email))


def test_a_refusal_is_logged_with_the_user_but_not_the_value(
    caplog: pytest.LogCaptureFixture,
) -> None:
    with pytest.raises(ConfigurationError):
        application_claims(user_record(claims={"sub": "secret-looking-value"}))
    assert "'u1'" in caplog.text and "'sub'" in caplog.text
    assert "secret-looking-value" not in caplog.text


# --- session strategy ---------------------------------------------------------------------


async def test_session_identity_carries_the_claims(manual_clock: ManualClock) -> None:
    store = MemoryStore()
    strategy = SessionStrategy(store, store, clock=manual_clock, bus=LocalBus())
    user = await stored_user(store)
    identity, issued = await strategy.issue(user, LoginContext())
    assert dict(identity.claims) == EXPECTED
    first = await strategy.authenticate(issued.access_token)  # read from the store
    assert strategy.counters.store_reads == 2 and strategy.counters.cache_hits == 0
    assert dict(first.claims) == EXPECTED
    cached = await strategy.authenticate(issued.access_token)
    assert strategy.counters.cache_hits == 1
    assert dict(cached.claims) == EXPECTED
    # The session strategy reads the account: a change shows on the next store read.
    user.claims = {"tenant_id": 8}
    await store.update_user(user)
    await strategy.user_changed(user)
    manual_clock.advance(1)
    _, issued = await strategy.issue(user, LoginContext())
    assert dict((await strategy.authenticate(issued.access_token)).claims) == {
        "tenant_id": 8,
        "email": EMAIL,
    }


async def test_session_login_with_a_reserved_claim_is_refused_before_anything_is_stored(
    manual_clock: ManualClock,
) -> None:
    store = MemoryStore()
    strategy = SessionStrategy(store, store, clock=manual_clock)
    user = user_record(claims={"tenant_id": 7, "roles": ["admin"]})
    await store.create_user(user)
    with pytest.raises(ConfigurationError, match="'roles'"):
        await strategy.issue(user, LoginContext())
    assert await store.list_user(user.id) == []


# --- jwt strategies -----------------------------------------------------------------------


@pytest.mark.parametrize("refreshing", [False, True], ids=["jwt", "jwt+refresh"])
async def test_jwt_tokens_and_identities_carry_the_claims(
    manual_clock: ManualClock, refreshing: bool
) -> None:
    store = MemoryStore()

    def make() -> JWTStrategy:
        keys = KeyManager(store, manual_clock)
        if refreshing:
            return RefreshingJWTStrategy(
                keys, POLICY, store, sessions=store, clock=manual_clock, bus=LocalBus()
            )
        return JWTStrategy(keys, POLICY, store, clock=manual_clock, bus=LocalBus())

    strategy = make()
    await strategy.start()
    user = await stored_user(store)
    identity, issued = await strategy.issue(user, LoginContext())
    payload = claims_mod.verify(issued.access_token, strategy.keyset, POLICY, manual_clock())
    assert {k: payload[k] for k in EXPECTED} == EXPECTED
    assert payload["sub"] == "u1" and payload["roles"] == ["staff"]
    assert identity.claims["tenant_id"] == 7 and identity.claims["email"] == EMAIL
    other = make()  # another process: the token is new to it
    await other.start()
    first = await other.authenticate(issued.access_token)
    assert other.counters.cache_hits == 0
    assert {k: first.claims[k] for k in EXPECTED} == EXPECTED
    cached = await other.authenticate(issued.access_token)
    assert other.counters.cache_hits == 1
    assert cached.claims["plan"] == CLAIMS["plan"]
    if isinstance(strategy, RefreshingJWTStrategy):
        # A refresh re-reads the account: the new token carries the claims as they are now.
        user.claims = {"tenant_id": 9}
        await store.update_user(user)
        _, again = await strategy.refresh(issued.refresh_token or "", LoginContext())
        payload = claims_mod.verify(again.access_token, strategy.keyset, POLICY, manual_clock())
        assert payload["tenant_id"] == 9 and "plan" not in payload


async def test_jwt_login_with_a_reserved_claim_is_refused(manual_clock: ManualClock) -> None:
    store = MemoryStore()
    strategy = RefreshingJWTStrategy(
        KeyManager(store, manual_clock), POLICY, store, sessions=store, clock=manual_clock
    )
    await strategy.start()
    user = user_record(claims={"auth_time": 0})
    await store.create_user(user)
    with pytest.raises(ConfigurationError, match="'auth_time'"):
        await strategy.issue(user, LoginContext())
    assert await store.list_user(user.id) == []
    plain = JWTStrategy(strategy.keyset, POLICY, store, clock=manual_clock)
    with pytest.raises(ConfigurationError, match="'sub'"):
        await plain.issue(user_record(claims={"sub": "someone-else"}), LoginContext())


# --- hybrid strategy ----------------------------------------------------------------------


async def make_hybrid(store: MemoryStore, clock: ManualClock, **options: Any) -> HybridStrategy:
    strategy = HybridStrategy(
        store, store, KeyManager(store, clock), POLICY, clock=clock, bus=LocalBus(), **options
    )
    await strategy.start()
    return strategy


async def test_hybrid_tokens_and_identities_carry_the_claims(manual_clock: ManualClock) -> None:
    store = MemoryStore()
    strategy = await make_hybrid(store, manual_clock)
    user = await stored_user(store)
    identity, issued = await strategy.issue(user, LoginContext())
    payload = claims_mod.verify(issued.access_token, strategy.keyset, POLICY, manual_clock())
    assert {k: payload[k] for k in EXPECTED} == EXPECTED
    assert identity.claims["tenant_id"] == 7
    manual_clock.advance(1)
    other = await make_hybrid(store, manual_clock)  # the token is new to this process
    manual_clock.advance(1)
    first = await other.authenticate(issued.access_token)
    assert {k: first.claims[k] for k in EXPECTED} == EXPECTED
    cached = await other.authenticate(issued.access_token)
    assert other.counters.cache_hits == 1 and cached.claims["email"] == EMAIL
    # After a refresh the token carries the claims as the account has them now.
    user.claims = {"tenant_id": 9}
    await store.update_user(user)
    _, again = await strategy.refresh(issued.refresh_token or "", LoginContext())
    refreshed = await other.authenticate(again.access_token)
    assert refreshed.claims["tenant_id"] == 9 and "plan" not in refreshed.claims


async def test_hybrid_refresh_refused_for_a_bad_claim_leaves_the_token_usable(
    manual_clock: ManualClock,
) -> None:
    events: list[AuditEvent] = []

    async def hook(event: AuditEvent) -> None:
        events.append(event)

    store = MemoryStore()
    strategy = await make_hybrid(store, manual_clock, audit=AuditLog(hook))
    user = await stored_user(store)
    _, issued = await strategy.issue(user, LoginContext())
    user.claims = {"sid": "forged"}
    await store.update_user(user)
    with pytest.raises(ConfigurationError, match="'sid'"):
        await strategy.refresh(issued.refresh_token or "", LoginContext())
    manual_clock.advance(60)  # well past the grace window
    user.claims = {"tenant_id": 7}
    await store.update_user(user)
    # The refused attempt did not use the token up, so this is no reuse.
    _, again = await strategy.refresh(issued.refresh_token or "", LoginContext())
    assert again.refresh_token and not [e for e in events if e.name == "theft"]


# --- satchel.verify -----------------------------------------------------------------------


@pytest.fixture
def jwks() -> Iterator[tuple[list[bytes], str]]:
    body = [b'{"keys":[]}']

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body[0])))
            self.end_headers()
            self.wfile.write(body[0])

        def log_message(self, *args: Any) -> None:
            return None

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield body, f"http://127.0.0.1:{httpd.server_address[1]}/jwks"
    httpd.shutdown()
    httpd.server_close()


async def test_verifier_identity_carries_the_claims(
    manual_clock: ManualClock, jwks: tuple[list[bytes], str]
) -> None:
    body, url = jwks
    store = MemoryStore()
    strategy = await make_hybrid(store, manual_clock)
    body[0] = json.dumps(strategy.keyset.jwks(manual_clock())).encode()
    _, issued = await strategy.issue(await stored_user(store), LoginContext())
    verifier = Verifier(url, issuer=POLICY.issuer, audience=POLICY.audience, clock=manual_clock)
    await verifier.start()
    try:
        identity = await verifier.verify(issued.access_token)
        assert {k: identity.claims[k] for k in EXPECTED} == EXPECTED
        assert (await verifier.verify(issued.access_token)).claims["tenant_id"] == 7
    finally:
        await verifier.close()
