"""Attacks on the account flows: replay, another user's token, expiry, a reset after a
password change, enumeration (status, body, headers; timing measured), throttling,
Host-header injection into links, header injection through addresses, and a mail server
that is down."""

from __future__ import annotations

import asyncio
import logging
import statistics
import time

import httpx
import pytest

from accountshelpers import NEW_PASSWORD, PASSWORD, PUBLIC, App, account_app, login
from mailhelpers import free_port

FORGOT = "/auth/password/forgot"
RESET = "/auth/password/reset"


def invalid(response: httpx.Response) -> None:
    assert response.status_code == 400, response.text
    assert response.json()["error"] == "invalid_token"


async def reset_token(app: App, address: str = "alice@example.com") -> str:
    before = len(app.mails(address))
    await app.client.post(FORGOT, json={"email": address})
    return (await app.mail(address, before + 1)).token("/reset-password")


async def reset(app: App, token: str, password: str = NEW_PASSWORD) -> httpx.Response:
    return await app.client.post(RESET, json={"token": token, "password": password})


# --- tokens -------------------------------------------------------------------------------


async def test_replayed_tokens_are_refused() -> None:
    async with account_app() as app:
        await app.add_user("alice", "alice@example.com")
        token = await reset_token(app)
        assert (await reset(app, token)).status_code == 200
        invalid(await reset(app, token, "yet another passphrase 4"))


async def test_parallel_use_of_one_token_succeeds_once() -> None:
    async with account_app() as app:
        await app.add_user("alice", "alice@example.com")
        await app.client.post("/auth/sign-in/link", json={"email": "alice@example.com"})
        token = (await app.mail("alice@example.com")).token("/sign-in/link")
        clients = [app.browser() for _ in range(6)]
        results = await asyncio.gather(
            *(
                c.post("/auth/sign-in/link/consume", json={"token": token, "mode": "token"})
                for c in clients
            )
        )
        assert sorted(r.status_code for r in results) == [200] + [400] * 5
        for c in clients:
            await c.aclose()


async def test_a_token_acts_only_on_its_own_user_and_kind() -> None:
    async with account_app() as app:
        await app.add_user("alice", "alice@example.com")
        await app.add_user("bob", "bob@example.com")
        alice_reset = await reset_token(app)
        # A reset token is no verification, sign-in or address-change token.
        invalid(await app.client.post("/auth/email/verify", json={"token": alice_reset}))
        invalid(await app.client.post("/auth/sign-in/link/consume", json={"token": alice_reset}))
        invalid(await app.client.post("/auth/email/change/confirm", json={"token": alice_reset}))
        # Bob, signed in, resetting with Alice's link changes Alice's password, not his.
        await login(app.client, "bob")
        assert (await reset(app, alice_reset)).status_code == 200
        await login(app.browser(), "bob", PASSWORD)
        await login(app.browser(), "alice", NEW_PASSWORD)
        # Bob's code does not open Alice's account.
        await app.client.post("/auth/sign-in/link", json={"email": "bob@example.com"})
        bob_code = (await app.mail("bob@example.com")).code()
        invalid(
            await app.client.post(
                "/auth/sign-in/link/consume",
                json={"email": "alice@example.com", "code": bob_code, "mode": "token"},
            )
        )


async def test_expired_tokens_are_refused() -> None:
    async with account_app() as app:
        await app.add_user("alice", "alice@example.com")
        token = await reset_token(app)
        app.clock.advance(30 * 60 + 1)
        invalid(await reset(app, token))
        await app.client.post("/auth/sign-in/link", json={"email": "alice@example.com"})
        link = (await app.mail("alice@example.com", 2)).token("/sign-in/link")
        app.clock.advance(10 * 60 + 1)
        invalid(await app.client.post("/auth/sign-in/link/consume", json={"token": link}))


async def test_a_password_change_kills_an_outstanding_reset_link() -> None:
    async with account_app() as app:
        await app.add_user("alice", "alice@example.com")
        token = await reset_token(app)
        await login(app.client, "alice")
        changed = await app.client.post(
            "/auth/password",
            json={"current_password": PASSWORD, "new_password": "granite lemon tower 5"},
        )
        assert changed.status_code == 200, changed.text
        invalid(await reset(app, token))
        # A second reset link, after a reset through the first, is dead too.
        first, second = await reset_token(app), await reset_token(app)
        invalid(await reset(app, first))  # a new request replaced it
        assert (await reset(app, second)).status_code == 200


async def test_an_administrators_force_logout_kills_sign_in_links() -> None:
    async with account_app() as app:
        alice = await app.add_user("alice", "alice@example.com")
        await app.client.post("/auth/sign-in/link", json={"email": "alice@example.com"})
        token = (await app.mail("alice@example.com")).token("/sign-in/link")
        app.clock.advance(1)
        await app.auth.revoke_user_sessions(alice.id)
        invalid(await app.client.post("/auth/sign-in/link/consume", json={"token": token}))


async def test_disabled_accounts_get_no_mail_and_no_sign_in() -> None:
    async with account_app() as app:
        alice = await app.add_user("alice", "alice@example.com")
        await app.client.post("/auth/sign-in/link", json={"email": "alice@example.com"})
        token = (await app.mail("alice@example.com")).token("/sign-in/link")
        await app.auth.set_disabled(alice.id, True)
        invalid(await app.client.post("/auth/sign-in/link/consume", json={"token": token}))
        await app.client.post(FORGOT, json={"email": "alice@example.com"})
        await app.settle()
        assert len(app.mails("alice@example.com")) == 1


# --- enumeration --------------------------------------------------------------------------


def _shape(response: httpx.Response) -> tuple[int, bytes, list[tuple[str, str]]]:
    headers = sorted((k, v) for k, v in response.headers.items() if k not in ("date",))
    return response.status_code, response.content, headers


@pytest.mark.parametrize(
    ("path", "body"),
    [
        (FORGOT, lambda email: {"email": email}),
        ("/auth/sign-in/link", lambda email: {"email": email}),
        (
            "/auth/register",
            lambda email: {
                "username": f"u{time.monotonic_ns()}",
                "password": PASSWORD,
                "email": email,
            },
        ),
    ],
)
async def test_known_and_unknown_addresses_look_the_same(path: str, body: object) -> None:
    make = body  # type: ignore[assignment]
    async with account_app(mail_address_limit=1000, mail_ip_limit=1000) as app:
        await app.add_user("alice", "alice@example.com")
        known = await app.client.post(path, json=make("alice@example.com"))  # type: ignore[operator]
        unknown = await app.client.post(path, json=make("nobody@example.com"))  # type: ignore[operator]
        assert _shape(known) == _shape(unknown)
        assert known.status_code == 202

        # Timing: the answer does the same work for both (the lookup runs afterwards, in the
        # background). Measured, not held to a tight number: the medians stay within noise.
        samples: dict[str, list[float]] = {"known": [], "unknown": []}
        for round_ in range(40):
            for label, email in (("known", "alice@example.com"), ("unknown", "nobody@example.com")):
                started = time.perf_counter()
                await app.client.post(path, json=make(email))  # type: ignore[operator]
                samples[label].append(time.perf_counter() - started)
            if round_ % 10 == 9:
                await app.settle()
        known_ms = statistics.median(samples["known"]) * 1000
        unknown_ms = statistics.median(samples["unknown"]) * 1000
        print(f"{path}: median known {known_ms:.2f} ms, unknown {unknown_ms:.2f} ms")
        assert max(known_ms, unknown_ms) < 3 * min(known_ms, unknown_ms) + 2


async def test_a_bad_address_is_refused_the_same_for_everyone() -> None:
    async with account_app() as app:
        response = await app.client.post(FORGOT, json={"email": "not an address"})
        assert response.status_code == 400 and response.json()["error"] == "invalid_request"


# --- throttling ---------------------------------------------------------------------------


async def test_mails_per_address_are_limited_silently() -> None:
    async with account_app(mail_address_limit=3) as app:
        await app.add_user("alice", "alice@example.com")
        answers = [
            (await app.client.post(FORGOT, json={"email": "alice@example.com"})).status_code
            for _ in range(6)
        ]
        await app.settle()
        assert answers == [202] * 6
        assert len(app.mails("alice@example.com")) == 3


async def test_requests_per_client_are_limited() -> None:
    async with account_app(mail_ip_limit=4) as app:
        answers = [
            (await app.client.post(FORGOT, json={"email": f"u{n}@example.com"})).status_code
            for n in range(6)
        ]
        assert answers == [202] * 4 + [429] * 2
        limited = await app.client.post(FORGOT, json={"email": "x@example.com"})
        assert int(limited.headers["retry-after"]) >= 1


async def test_wrong_codes_lock_the_address_and_kill_its_codes() -> None:
    async with account_app(code_attempt_limit=3) as app:
        await app.add_user("alice", "alice@example.com")
        await app.client.post("/auth/sign-in/link", json={"email": "alice@example.com"})
        code = (await app.mail("alice@example.com")).code()
        wrong = f"{(int(code) + 1) % 1_000_000:06d}"
        body = {"email": "alice@example.com", "code": wrong, "mode": "token"}
        statuses = [
            (await app.client.post("/auth/sign-in/link/consume", json=body)).status_code
            for _ in range(3)
        ]
        assert statuses == [400, 400, 400]
        right = {**body, "code": code}
        locked = await app.client.post("/auth/sign-in/link/consume", json=right)
        assert locked.status_code == 429
        await app.settle()
        app.clock.advance(11 * 60)  # past the window: the code was deleted, not just paused
        invalid(await app.client.post("/auth/sign-in/link/consume", json=right))


async def test_failed_tokens_per_client_are_limited() -> None:
    async with account_app(token_failure_limit=5) as app:
        bogus = {"token": "A" * 43, "password": NEW_PASSWORD}
        statuses = [(await app.client.post(RESET, json=bogus)).status_code for _ in range(7)]
        assert statuses == [400] * 5 + [429] * 2


# --- links and headers --------------------------------------------------------------------


async def test_host_header_never_reaches_a_link() -> None:
    async with account_app() as app:
        await app.add_user("alice", "alice@example.com")
        await app.client.post(
            FORGOT,
            json={"email": "alice@example.com"},
            headers={"host": "evil.test", "x-forwarded-host": "evil.test"},
        )
        mail = await app.mail("alice@example.com")
        assert "evil.test" not in mail.text and "evil.test" not in (mail.html or "")
        assert mail.link("/reset-password").startswith(f"{PUBLIC}/reset-password?token=")


@pytest.mark.parametrize(
    "email",
    [
        "alice@example.com\r\nBcc: attacker@evil.test",
        "alice@example.com\nBcc: attacker@evil.test",
        "alice@example.com,attacker@evil.test",
        "Alice <attacker@evil.test>",
        "alice@example.com\x00attacker@evil.test",
    ],
)
async def test_header_injection_through_an_address(email: str) -> None:
    async with account_app() as app:
        await app.add_user("alice", "alice@example.com")
        for path, body in (
            (FORGOT, {"email": email}),
            ("/auth/sign-in/link", {"email": email}),
            ("/auth/register", {"username": "mallory", "password": PASSWORD, "email": email}),
        ):
            response = await app.client.post(path, json=body)
            assert response.status_code == 400, (path, response.text)
        await app.settle()
        assert app.catcher.messages == []


# --- the mail server is down --------------------------------------------------------------


async def test_mail_server_down_answers_as_usual_then_logs_the_failure(
    caplog: pytest.LogCaptureFixture,
) -> None:
    async with account_app(smtp_port=free_port(), mail_attempts=3) as app:
        await app.add_user("alice", "alice@example.com")
        with caplog.at_level(logging.WARNING, logger="satchel"):
            started = time.perf_counter()
            response = await app.client.post(FORGOT, json={"email": "alice@example.com"})
            elapsed = time.perf_counter() - started
            assert response.status_code == 202 and elapsed < 0.5
            await app.settle()
        stats = app.service.outbox.stats  # type: ignore[attr-defined]
        assert (stats.retried, stats.failed, stats.done) == (2, 1, 0)
        assert "given up" in caplog.text
        assert "token=" not in caplog.text
        # Nothing else is lost: the reset link exists, and the next request works.
        alice = await app.user("alice")
        pending = await app.service.tokens.list_for_user("reset", alice.id, app.clock())
        assert len(pending) == 1
        assert (await app.client.get("/healthz")).status_code == 200
