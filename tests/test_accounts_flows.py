"""The account life cycle through the JSON API, with every mail received by a real SMTP
server, parsed, and its link followed: sign-up, verification, invitations, first admin,
password reset, sign-in by link and by code, address change."""

from __future__ import annotations

import asyncio
from pathlib import Path

import httpx
import pytest

from accountshelpers import NEW_PASSWORD, PASSWORD, PUBLIC, App, account_app, login
from mailhelpers import PASSWORD as SMTP_PASSWORD
from mailhelpers import USER as SMTP_USER
from mailhelpers import make_certificate, server_tls, smtp_server
from satchel.accounts.tokens import TokenKind
from satchel.errors import NotFound


@pytest.fixture(params=["memory", "sqlite"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    return "memory://" if request.param == "memory" else f"sqlite:///{tmp_path / 's.db'}"


def error(response: httpx.Response, status: int, code: str) -> None:
    assert response.status_code == status, response.text
    assert response.json()["error"] == code
    assert "Traceback" not in response.text


async def register(app: App, name: str, email: str, **extra: str) -> httpx.Response:
    body = {"username": name, "password": PASSWORD, "email": email, **extra}
    return await app.client.post("/auth/register", json=body)


async def test_open_sign_up_verify_then_sign_in(store: str) -> None:
    async with account_app(store) as app:
        response = await register(app, "carol", "carol@example.com")
        assert response.status_code == 202
        mail = await app.mail("carol@example.com")
        assert mail.message["Subject"].startswith("Confirm your e-mail address")
        link = mail.link("/verify-email")
        assert link.startswith(f"{PUBLIC}/verify-email?token=")
        carol = await app.user("carol")
        assert carol.email is None  # nothing is claimed before the link is confirmed

        # Following the link (a GET, as a mail scanner does) uses nothing up.
        page = await app.client.get(link.removeprefix(PUBLIC), headers={"accept": "text/html"})
        assert page.status_code == 200 and "Confirm my address" in page.text
        assert (await app.user("carol")).email is None

        ok = await app.client.post(
            "/auth/email/verify", json={"token": mail.token("/verify-email")}
        )
        assert ok.status_code == 200 and ok.json() == {"status": "verified"}
        assert (await app.user("carol")).email == "carol@example.com"
        again = await app.client.post(
            "/auth/email/verify", json={"token": mail.token("/verify-email")}
        )
        error(again, 400, "invalid_token")
        await login(app.client, "carol")


async def test_sign_up_is_closed_by_default() -> None:
    async with account_app(signup="closed") as app:
        error(await register(app, "carol", "carol@example.com"), 403, "signup_closed")
        await app.settle()
        assert app.catcher.messages == []


async def test_invitation_sign_up(store: str) -> None:
    async with account_app(store, signup="invite") as app:
        error(await register(app, "carol", "carol@example.com"), 403, "signup_closed")
        link = await app.service.signup.create_invite("carol@example.com", ["staff"])
        assert link.startswith(f"{PUBLIC}/register?invite=")
        invite = link.rsplit("=", 1)[1]
        error(
            await register(app, "carol", "mallory@example.com", invite=invite),
            400,
            "invalid_request",
        )
        assert (await register(app, "carol", "carol@example.com", invite=invite)).status_code == 202
        mail = await app.mail("carol@example.com")
        ok = await app.client.post(
            "/auth/email/verify", json={"token": mail.token("/verify-email")}
        )
        assert ok.status_code == 200
        carol = await app.user("carol")
        assert carol.roles == ["staff"] and carol.email == "carol@example.com"
        error(await register(app, "dave", "carol@example.com", invite=invite), 400, "invalid_token")


async def test_open_sign_up_with_a_taken_address_answers_the_same() -> None:
    async with account_app() as app:
        await app.add_user("alice", "alice@example.com")
        new = await register(app, "carol", "carol@example.com")
        taken = await register(app, "mallory", "Alice@Example.com")
        assert (new.status_code, new.json()) == (taken.status_code, taken.json())
        notice = await app.mail("Alice@example.com")
        assert "already belongs to your account" in notice.text
        assert "token=" not in notice.text
        with pytest.raises(NotFound):
            await app.user("mallory")


async def test_first_admin_setup_link() -> None:
    async with account_app() as app:
        link = await app.service.signup.setup_link()
        assert link is not None and link.startswith(f"{PUBLIC}/setup?token=")
        token = link.rsplit("=", 1)[1]
        body = {"token": token, "username": "root", "password": PASSWORD}
        response = await app.client.post("/auth/setup", json=body)
        assert response.status_code == 200, response.text
        assert response.json()["roles"] == ["admin"]
        assert (await app.client.get("/auth/me")).json()["username"] == "root"
        error(await app.client.post("/auth/setup", json=body), 400, "invalid_token")
        assert await app.service.signup.setup_link() is None  # users exist now


async def test_forgot_reset_ends_every_session(store: str) -> None:
    async with account_app(store) as app:
        await app.add_user("alice", "alice@example.com")
        other = app.browser()
        await login(other, "alice")
        assert (await other.get("/auth/me")).status_code == 200
        response = await app.client.post(
            "/auth/password/forgot", json={"email": "alice@example.com"}
        )
        assert response.status_code == 202
        mail = await app.mail("alice@example.com")
        token = mail.token("/reset-password")
        weak = await app.client.post(
            "/auth/password/reset", json={"token": token, "password": "alice"}
        )
        assert weak.status_code == 400  # refused before the token is used up
        done = await app.client.post(
            "/auth/password/reset", json={"token": token, "password": NEW_PASSWORD}
        )
        assert done.status_code == 200 and done.json() == {"status": "reset"}
        assert (await other.get("/auth/me")).status_code == 401
        await login(app.client, "alice", NEW_PASSWORD)
        replay = await app.client.post(
            "/auth/password/reset", json={"token": token, "password": "another fine passphrase 7"}
        )
        error(replay, 400, "invalid_token")
        notice = await app.mail("alice@example.com", 2)
        assert "was just reset" in notice.text
        await other.aclose()


async def test_sign_in_by_link_and_by_code(store: str) -> None:
    async with account_app(store) as app:
        await app.add_user("alice", "alice@example.com")
        await app.client.post("/auth/sign-in/link", json={"email": "alice@example.com"})
        mail = await app.mail("alice@example.com")
        link = mail.link("/sign-in/link")
        page = await app.client.get(link.removeprefix(PUBLIC), headers={"accept": "text/html"})
        assert page.status_code == 200 and "Press the button to sign in" in page.text
        response = await app.client.post(
            "/auth/sign-in/link/consume", json={"token": mail.token("/sign-in/link")}
        )
        assert response.status_code == 200, response.text
        assert response.json()["username"] == "alice"
        assert (await app.client.get("/auth/me")).status_code == 200
        # The code of the same mail died with the link.
        used = await app.client.post(
            "/auth/sign-in/link/consume",
            json={"email": "alice@example.com", "code": mail.code(), "mode": "token"},
        )
        error(used, 400, "invalid_token")

        await app.client.post("/auth/sign-in/link", json={"email": "alice@example.com"})
        second = await app.mail("alice@example.com", 2)
        api = await app.client.post(
            "/auth/sign-in/link/consume",
            json={"email": "ALICE@example.com", "code": second.code(), "mode": "token"},
        )
        assert api.status_code == 200, api.text
        bearer = api.json()["access_token"]
        async with app.browser() as fresh:
            me = await fresh.get("/auth/me", headers={"authorization": f"Bearer {bearer}"})
        assert me.status_code == 200 and me.json()["username"] == "alice"


async def test_email_change_confirm_notice_and_other_sessions(store: str) -> None:
    async with account_app(store) as app:
        await app.add_user("alice", "alice@example.com")
        phone = app.browser()
        await login(phone, "alice")
        await login(app.client, "alice")
        wrong = await app.client.post(
            "/auth/email/change", json={"email": "alice@new.example", "password": "nope nope"}
        )
        error(wrong, 401, "invalid_login")
        asked = await app.client.post(
            "/auth/email/change", json={"email": "alice@new.example", "password": PASSWORD}
        )
        assert asked.status_code == 202
        mail = await app.mail("alice@new.example")
        assert (await app.user("alice")).email == "alice@example.com"  # until confirmed
        async with app.browser() as anywhere:
            ok = await anywhere.post(
                "/auth/email/change/confirm", json={"token": mail.token("/email/confirm")}
            )
        assert ok.status_code == 200 and ok.json() == {"status": "changed"}
        assert (await app.user("alice")).email == "alice@new.example"
        notice = await app.mail("alice@example.com")
        assert "alice@new.example" in notice.text
        assert (await app.client.get("/auth/me")).status_code == 200  # the asking session stays
        assert (await phone.get("/auth/me")).status_code == 401
        await phone.aclose()


async def test_resend_verification() -> None:
    async with account_app() as app:
        await register(app, "carol", "carol@example.com")
        first = await app.mail("carol@example.com")
        await login(app.client, "carol")
        response = await app.client.post("/auth/email/verify/resend")
        assert response.status_code == 202
        second = await app.mail("carol@example.com", 2)
        old = await app.client.post(
            "/auth/email/verify", json={"token": first.token("/verify-email")}
        )
        error(old, 400, "invalid_token")  # the resent link replaced it
        new = await app.client.post(
            "/auth/email/verify", json={"token": second.token("/verify-email")}
        )
        assert new.status_code == 200


async def test_starttls_and_auth_in_a_whole_flow(tmp_path: Path) -> None:
    cert, key = make_certificate(tmp_path)
    async with smtp_server("starttls", tls=server_tls(cert, key), auth=True) as (catcher, port):
        url = f"smtp+starttls://{SMTP_USER}:{SMTP_PASSWORD}@127.0.0.1:{port}?cafile={cert}"
        async with account_app(mail_url=url) as app:
            app.catcher = catcher
            await app.add_user("alice", "alice@example.com")
            await app.client.post("/auth/password/forgot", json={"email": "alice@example.com"})
            mail = await app.mail("alice@example.com")
            assert catcher.authenticated and catcher.tls_seen == [True]
            token = mail.token("/reset-password")
            done = await app.client.post(
                "/auth/password/reset", json={"token": token, "password": NEW_PASSWORD}
            )
            assert done.status_code == 200


@pytest.mark.postgres
async def test_flows_on_postgres(database_url: str, run_id: str) -> None:
    async with account_app(database_url, pg_schema=f"acct_{run_id}") as app:
        try:
            await app.add_user("alice", "alice@example.com")
            await app.client.post("/auth/password/forgot", json={"email": "alice@example.com"})
            token = (await app.mail("alice@example.com")).token("/reset-password")
            records = await app.service.tokens.list_for_user(
                TokenKind.RESET.value, (await app.user("alice")).id, app.clock()
            )
            assert len(records) == 1
            done = await app.client.post(
                "/auth/password/reset", json={"token": token, "password": NEW_PASSWORD}
            )
            assert done.status_code == 200
        finally:
            import asyncpg

            conn = await asyncpg.connect(database_url)
            await conn.execute(f'DROP SCHEMA IF EXISTS "acct_{run_id}" CASCADE')
            await conn.close()


@pytest.mark.redis
async def test_flows_on_redis(redis_url: str, run_id: str) -> None:
    prefix = f"acct{run_id}"
    try:
        async with account_app(redis_url, key_prefix=prefix, redis_url=redis_url) as app:
            await app.add_user("alice", "alice@example.com")
            await app.client.post("/auth/sign-in/link", json={"email": "alice@example.com"})
            mail = await app.mail("alice@example.com")
            response = await app.client.post(
                "/auth/sign-in/link/consume", json={"token": mail.token("/sign-in/link")}
            )
            assert response.status_code == 200
    finally:
        import redis.asyncio as aioredis

        client = aioredis.Redis.from_url(redis_url)
        keys = [key async for key in client.scan_iter(match=f"{prefix}:*")]
        if keys:
            await client.delete(*keys)
        await client.aclose()


async def test_expired_tokens_are_purged(tmp_path: Path) -> None:
    from satchel.stores.onetime import OneTimeRecord

    async with account_app(f"sqlite:///{tmp_path / 'p.db'}", purge_interval=0.05) as app:
        now = app.clock()
        for ttl in (-1.0, 600.0):
            await app.service.tokens.put(
                OneTimeRecord("reset", bytes([int(ttl > 0)]) * 32, now - 10, now + ttl, "u1")
            )
        for _ in range(100):
            if len(await app.service.tokens.list_for_user("reset", "u1", now - 100)) == 1:
                break
            await asyncio.sleep(0.02)
        left = await app.service.tokens.list_for_user("reset", "u1", now - 100)
        assert [r.expires_at for r in left] == [now + 600.0]


def test_public_url_defaults() -> None:
    from satchel.config.accounts import mail_url, public_url
    from satchel.config.settings import Settings

    assert public_url(Settings(port=9000)) == "http://127.0.0.1:9000"
    assert public_url(Settings(host="0.0.0.0", port=80)) == "http://localhost:80"
    assert public_url(Settings(host="::1")) == "http://[::1]:8000"
    assert public_url(Settings(public_url="https://auth.example.com/")) == PUBLIC
    assert mail_url(Settings(store="memory://")) == "console://"
    assert mail_url(Settings(store="redis://r")) == "none://"


@pytest.mark.parametrize("strategy", ["jwt", "hybrid"])
async def test_the_flows_on_the_other_strategies(strategy: str) -> None:
    async with account_app(strategy=strategy) as app:
        await app.add_user("alice", "alice@example.com")
        other = app.browser()
        await login(other, "alice")
        await app.client.post("/auth/sign-in/link", json={"email": "alice@example.com"})
        mail = await app.mail("alice@example.com")
        signed = await app.client.post(
            "/auth/sign-in/link/consume", json={"token": mail.token("/sign-in/link")}
        )
        assert signed.status_code == 200 and signed.json()["strategy"] == strategy
        app.clock.advance(1)
        await app.client.post("/auth/password/forgot", json={"email": "alice@example.com"})
        token = (await app.mail("alice@example.com", 2)).token("/reset-password")
        done = await app.client.post(
            "/auth/password/reset", json={"token": token, "password": NEW_PASSWORD}
        )
        assert done.status_code == 200
        # Every credential issued before the reset ends, signed tokens included.
        assert (await other.get("/auth/me")).status_code == 401
        assert (await app.client.get("/auth/me")).status_code == 401
        await other.aclose()
