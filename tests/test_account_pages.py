"""The account pages in-process: their forms, CSRF refusal, error pages, and that opening
a link (GET) never uses its token up."""

from __future__ import annotations

import re

import httpx

from accountshelpers import NEW_PASSWORD, PASSWORD, PUBLIC, App, account_app, login

HTML = {"accept": "text/html"}


def csrf_token(page: httpx.Response) -> str:
    match = re.search(r'name="csrf_token" value="([^"]+)"', page.text)
    assert match, page.text
    return match.group(1)


async def post_form(app: App, path: str, page: httpx.Response, **fields: str) -> httpx.Response:
    data = {"csrf_token": csrf_token(page), **fields}
    return await app.client.post(path, data=data, headers=HTML)


async def test_every_link_page_is_a_confirmation_that_consumes_nothing() -> None:
    async with account_app() as app:
        await app.add_user("alice", "alice@example.com")
        await app.client.post("/auth/password/forgot", json={"email": "alice@example.com"})
        link = (await app.mail("alice@example.com")).link("/reset-password")
        for _ in range(3):
            page = await app.client.get(link.removeprefix(PUBLIC), headers=HTML)
            assert page.status_code == 200
            assert page.headers["cache-control"] == "no-store"
            assert "default-src 'none'" in page.headers["content-security-policy"]
        token = link.rsplit("=", 1)[1]
        done = await post_form(
            app, "/reset-password", page, token=token, new=NEW_PASSWORD, confirm=NEW_PASSWORD
        )
        assert done.status_code == 303 and done.headers["location"].startswith("/login")
        await login(app.browser(), "alice", NEW_PASSWORD)


async def test_a_form_post_without_its_csrf_token_changes_nothing() -> None:
    async with account_app() as app:
        await app.add_user("alice", "alice@example.com")
        response = await app.client.post(
            "/forgot-password", data={"email": "alice@example.com"}, headers=HTML
        )
        assert response.status_code == 403
        await app.settle()
        assert app.mails("alice@example.com") == []


async def test_pages_of_sign_up_and_forgot_password() -> None:
    async with account_app(signup="closed") as app:
        closed = await app.client.get("/register", headers=HTML)
        assert closed.status_code == 200 and "Sign-up is closed" in closed.text
    async with account_app() as app:
        await app.add_user("alice", "alice@example.com")
        form = await app.client.get("/register", headers=HTML)
        taken = await post_form(
            app,
            "/register",
            form,
            username="alice",
            email="a@example.com",
            password=PASSWORD,
            confirm=PASSWORD,
        )
        assert taken.status_code == 409 and "username is taken" in taken.text
        differ = await post_form(
            app,
            "/register",
            form,
            username="carol",
            email="c@example.com",
            password=PASSWORD,
            confirm="other",
        )
        assert differ.status_code == 400
        forgot = await app.client.get("/forgot-password", headers=HTML)
        bad = await post_form(app, "/forgot-password", forgot, email="x\r\nBcc: y@evil.test")
        assert bad.status_code == 400 and "e-mail address" in bad.text
        sent = await post_form(app, "/forgot-password", forgot, email="nobody@example.com")
        known = await post_form(app, "/forgot-password", forgot, email="alice@example.com")
        assert sent.status_code == known.status_code == 200
        assert sent.text == known.text
        empty = await app.client.get("/verify-email", headers=HTML)
        assert "incomplete" in empty.text


async def test_email_page_changes_the_address() -> None:
    async with account_app() as app:
        await app.add_user("alice", "alice@example.com")
        await login(app.client, "alice")
        page = await app.client.get("/email", headers=HTML)
        assert page.status_code == 200 and "alice@example.com" in page.text
        wrong = await post_form(app, "/email", page, email="new@example.com", password="nope")
        assert wrong.status_code == 400 and "incorrect" in wrong.text
        asked = await post_form(app, "/email", page, email="new@example.com", password=PASSWORD)
        assert asked.status_code == 200 and "Check your mail" in asked.text
        link = (await app.mail("new@example.com")).link("/email/confirm")
        confirm = await app.client.get(link.removeprefix(PUBLIC), headers=HTML)
        assert (await app.user("alice")).email == "alice@example.com"
        done = await post_form(app, "/email/confirm", confirm, token=link.rsplit("=", 1)[1])
        assert done.status_code == 200 and "Address changed" in done.text
        assert (await app.user("alice")).email == "new@example.com"
        replay = await post_form(app, "/email/confirm", confirm, token=link.rsplit("=", 1)[1])
        assert replay.status_code == 400


async def test_signed_out_email_page_goes_to_sign_in() -> None:
    async with account_app() as app:
        response = await app.client.get("/email", headers=HTML)
        assert response.status_code == 303 and response.headers["location"].startswith("/login")
