"""Passwords and login (P01-P05) over HTTP, and the login throttle on memory and Redis."""

from __future__ import annotations

import time

import argon2
import httpx
import pytest
from limits.aio.storage import MemoryStorage

from satchel.accounts.passwords import MIN_MEMORY_COST, MIN_TIME_COST, PasswordHasher
from satchel.accounts.throttle import LoginThrottle, LoginThrottled, ThrottlePolicy
from satchel.errors import StoreUnavailable
from satchel.transports.client_ip import client_ip, parse_networks

from .conftest import ORIGIN, PASSWORD, Server, ServerFactory, assert_clean_error

JSON = {"origin": ORIGIN}


async def login(
    server: Server, username: str, password: str, ip: str = "127.0.0.1", **headers: str
) -> httpx.Response:
    async with server.fresh_client(peer=(ip, 1234)) as client:
        return await client.post(
            "/auth/login",
            json={"username": username, "password": password},
            headers={**JSON, **{k.replace("_", "-"): v for k, v in headers.items()}},
        )


async def test_P01_failures_indistinguishable(server: Server) -> None:
    await server.auth.users.set_disabled(server.users["carol"], True)
    responses = [
        await login(server, "nobody-here", PASSWORD),
        await login(server, "alice", "wrong password"),
        await login(server, "carol", PASSWORD),
    ]
    for r in responses:
        assert_clean_error(r, 401, "invalid_login")
    bodies = {r.text for r in responses}
    assert len(bodies) == 1
    header_sets = {
        tuple(
            sorted(
                (k, v) for k, v in r.headers.items() if k not in ("content-length", "x-request-id")
            )
        )
        for r in responses
    }
    assert len(header_sets) == 1
    assert all("set-cookie" not in r.headers for r in responses)


async def test_P01_each_failure_costs_one_hash(server: Server) -> None:
    hasher = server.auth.users.hasher
    for username, password in (("nobody", PASSWORD), ("alice", "wrong password")):
        before = hasher.calls
        await login(server, username, password)
        assert hasher.calls - before == 1


async def test_P01_timing_unknown_vs_wrong_password() -> None:
    hasher = PasswordHasher(memory_cost=MIN_MEMORY_COST, time_cost=MIN_TIME_COST)
    try:
        real = await hasher.hash(PASSWORD)

        async def timed(kind: str) -> float:
            start = time.perf_counter()
            if kind == "unknown":
                await hasher.verify_dummy("wrong password")
            else:
                await hasher.verify(real, "wrong password")
            return time.perf_counter() - start

        await timed("unknown")  # the dummy hash is computed once, lazily
        # Same work by construction: the dummy hash has the real hash's argon2 parameters.
        params = argon2.extract_parameters
        assert params(hasher._dummy_hash()) == params(real)
        # Interleaved, so a burst of load on a shared machine hits both kinds alike; the
        # minimum of several runs is the cost itself, larger samples are scheduler noise.
        samples: dict[str, list[float]] = {"unknown": [], "wrong": []}
        for _ in range(15):
            for kind in ("unknown", "wrong"):
                samples[kind].append(await timed(kind))
        unknown, wrong = min(samples["unknown"]), min(samples["wrong"])
        assert abs(unknown - wrong) / max(unknown, wrong) < 0.2, (unknown, wrong)
    finally:
        hasher.close()


async def test_P02_account_throttled_across_rotating_ips(server: Server) -> None:
    for i in range(100):
        r = await login(
            server, "alice", "wrong", ip=f"10.0.{i // 250}.{i % 250}", x_forwarded_for="1.2.3.4"
        )
        assert r.status_code == 401, (i, r.text)
    locked = await login(server, "alice", "wrong", ip="10.9.9.9")
    assert_clean_error(locked, 429, "too_many_requests")
    assert int(locked.headers["retry-after"]) > 0
    # The right password during the lockout gets exactly the same answer.
    right = await login(server, "alice", PASSWORD, ip="10.9.9.8")
    assert right.status_code == 429 and right.json() == locked.json()
    assert "set-cookie" not in right.headers
    # Other accounts are unaffected.
    assert (await login(server, "bob", PASSWORD, ip="10.9.9.7")).status_code == 200
    # It expires.
    server.clock.advance(2 * 3600 + 1)
    assert (await login(server, "alice", PASSWORD, ip="10.9.9.6")).status_code == 200


async def test_P02_per_ip_limit_and_spoofed_forwarded_for(server: Server) -> None:
    for i in range(20):
        r = await login(
            server, f"user{i}", "wrong", ip="203.0.113.5", x_forwarded_for=f"198.51.100.{i}"
        )
        assert r.status_code == 401
    blocked = await login(server, "alice", PASSWORD, ip="203.0.113.5", x_forwarded_for="192.0.2.1")
    assert_clean_error(blocked, 429)
    assert (await login(server, "alice", PASSWORD, ip="203.0.113.6")).status_code == 200
    server.clock.advance(121)
    assert (await login(server, "alice", PASSWORD, ip="203.0.113.5")).status_code == 200


async def test_P02_forwarded_for_honoured_from_trusted_proxy(make_server: ServerFactory) -> None:
    server = await make_server("session", trusted_proxies=["10.0.0.0/8"])
    for i in range(20):
        await login(server, f"u{i}", "wrong", ip="10.0.0.2", x_forwarded_for="203.0.113.9")
    assert (
        await login(server, "alice", PASSWORD, ip="10.0.0.3", x_forwarded_for="203.0.113.9")
    ).status_code == 429
    assert (
        await login(server, "alice", PASSWORD, ip="10.0.0.3", x_forwarded_for="203.0.113.10")
    ).status_code == 200


def test_P02_client_ip_rules() -> None:
    proxies = parse_networks(["10.0.0.0/8", "::1"])
    xff = [(b"x-forwarded-for", b"6.6.6.6, 203.0.113.9, 10.1.1.1")]
    assert client_ip("192.0.2.1", xff, proxies) == "192.0.2.1"  # untrusted peer: header ignored
    assert client_ip("10.0.0.1", xff, proxies) == "203.0.113.9"  # right-most untrusted hop
    assert (
        client_ip("10.0.0.1", [(b"x-forwarded-for", b"garbage, 10.2.2.2")], proxies) == "10.2.2.2"
    )
    assert client_ip("10.0.0.1", [], proxies) == "10.0.0.1"
    assert client_ip("::ffff:192.0.2.7", [], proxies) == "192.0.2.7"
    assert (
        client_ip(
            "10.0.0.1",
            [(b"x-forwarded-for", b"1.1.1.1"), (b"x-forwarded-for", b"2.2.2.2")],
            proxies,
        )
        == "2.2.2.2"
    )
    assert (
        client_ip("10.0.0.1", [(b"x-forwarded-for", b"[2001:db8::1]:443")], proxies)
        == "2001:db8::1"
    )


async def test_P02_throttle_on_redis(redis_url: str, run_id: str, manual_clock: object) -> None:
    from satchel.clock import ManualClock

    clock = manual_clock
    assert isinstance(clock, ManualClock)
    policy = ThrottlePolicy(account_limit=5, ip_limit=0)
    a = LoginThrottle.from_url(redis_url, policy, clock=clock, prefix=f"thr-{run_id}")
    b = LoginThrottle.from_url(redis_url, policy, clock=clock, prefix=f"thr-{run_id}")
    try:
        for _ in range(3):
            await a.failure("Alice", None)
        for _ in range(2):
            await b.failure("ALICE", None)  # same account, another process
        with pytest.raises(LoginThrottled) as info:
            await a.check("alice", None)
        assert info.value.scope == "account" and info.value.retry_after >= 1
        await b.check("bob", None)
        clock.advance(7201)
        await a.check("alice", None)
        await a.reset("alice")
    finally:
        await a.close()
        await b.close()


async def test_P02_F05_throttle_store_down_fails_closed(manual_clock: object) -> None:
    from satchel.clock import ManualClock

    assert isinstance(manual_clock, ManualClock)
    down = LoginThrottle.from_url("redis://127.0.0.1:1/0", clock=manual_clock)
    down.timeout = 1.0
    with pytest.raises(StoreUnavailable):
        await down.check("alice", "192.0.2.1")
    with pytest.raises(StoreUnavailable):
        await down.failure("alice", "192.0.2.1")
    await down.close()


async def test_P02_F05_login_refused_when_throttle_store_down(server: Server) -> None:
    server.auth.throttle = LoginThrottle.from_url("redis://127.0.0.1:1/0", clock=server.clock)
    server.auth.throttle.timeout = 1.0
    response = await login(server, "alice", PASSWORD)
    assert response.status_code == 503
    assert response.json()["error"] == "store_unavailable"
    assert "retry-after" in response.headers
    assert "set-cookie" not in response.headers


async def test_throttle_only_failures_count(server: Server) -> None:
    for _ in range(120):
        assert (await login(server, "bob", PASSWORD, ip="192.0.2.50")).status_code == 200
    memory = LoginThrottle(MemoryStorage(), ThrottlePolicy(account_limit=1, ip_limit=0))
    await memory.check("x", None)  # successes and checks count nothing
    await memory.check("x", None)
    await memory.failure("x", None)
    with pytest.raises(LoginThrottled):
        await memory.check("x", None)


async def test_P03_huge_password_rejected_before_hashing(server: Server) -> None:
    hasher = server.auth.users.hasher
    before = hasher.calls
    big = "p" * (1024 * 1024)
    r = await server.client.post(
        "/auth/login",
        content=b'{"username":"alice","password":"' + big.encode() + b'"}',
        headers={"content-type": "application/json", **JSON},
    )
    assert 400 <= r.status_code < 500
    r2 = await login(server, "alice", "p" * 5000)
    assert r2.status_code == 413, r2.text
    assert hasher.calls == before


async def test_P03_passphrase_byte_exact(server: Server) -> None:
    phrase = "  🦄 correct horse battery staple, ünïcödé & emoji 🎉 ok!!  "[:64]
    user = await server.auth.users.create_user("dave", phrase)
    assert user.id
    assert (await login(server, "dave", phrase)).status_code == 200
    assert (await login(server, "dave", phrase.strip())).status_code == 401


async def test_P04_hash_parameters_and_upgrade_on_login(server: Server) -> None:
    default = PasswordHasher()
    try:
        encoded = await default.hash("a sufficiently long one")
        assert encoded.startswith("$argon2id$")
        params = dict(p.split("=") for p in encoded.split("$")[3].split(","))
        assert int(params["m"]) >= 19 * 1024 and int(params["t"]) >= 2
    finally:
        default.close()
    record = await server.auth.stores.users.get_user(server.users["bob"])
    assert record is not None
    stored_before = record.password_hash
    strong = PasswordHasher(memory_cost=MIN_MEMORY_COST + 1024, time_cost=MIN_TIME_COST)
    try:
        old = server.auth.users.hasher
        server.auth.users.hasher = strong
        assert (await login(server, "bob", "wrong")).status_code == 401
        after_fail = await server.auth.stores.users.get_user(server.users["bob"])
        assert after_fail is not None and after_fail.password_hash == stored_before
        assert (await login(server, "bob", PASSWORD)).status_code == 200
        upgraded = await server.auth.stores.users.get_user(server.users["bob"])
        assert upgraded is not None and upgraded.password_hash != stored_before
        assert f"m={MIN_MEMORY_COST + 1024}" in upgraded.password_hash
        server.auth.users.hasher = old
    finally:
        strong.close()
