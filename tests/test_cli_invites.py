"""``satchel invites create`` and ``satchel serve --mail``: the invitation printed by the
command line signs a user up on the server that shares its store."""

from __future__ import annotations

import time
from pathlib import Path

from accountshelpers import PASSWORD, PUBLIC, account_app
from procs import satchel_cli
from satchel.config.settings import Settings


async def test_an_invitation_from_the_command_line_signs_up(tmp_path: Path) -> None:
    store = f"sqlite:///{tmp_path / 'app.db'}"
    env = {"SATCHEL_PUBLIC_URL": PUBLIC, "SATCHEL_SIGNUP": "invite"}
    async with account_app(store, signup="invite") as app:  # creates the store file
        app.clock.now = time.time()  # the command line stamps the invitation with real time
        done = satchel_cli(
            [
                "invites",
                "create",
                "--email",
                "ivy@example.com",
                "--role",
                "staff",
                "--store",
                store,
            ],
            env,
        )
        assert done.returncode == 0, done.stderr
        link = done.stdout.strip()
        assert link.startswith(f"{PUBLIC}/register?invite=") and "\n" not in link
        assert "works once" in done.stderr
        invite = link.rsplit("=", 1)[1]
        body = {"username": "ivy", "password": PASSWORD, "email": "ivy@example.com"}
        response = await app.client.post("/auth/register", json={**body, "invite": invite})
        assert response.status_code == 202, response.text
        mail = await app.mail("ivy@example.com")
        verified = await app.client.post(
            "/auth/email/verify", json={"token": mail.token("/verify-email")}
        )
        assert verified.status_code == 200
        assert (await app.user("ivy")).roles == ["staff"]
        again = await app.client.post(
            "/auth/register", json={**body, "username": "ivy2", "invite": invite}
        )
        assert again.status_code == 400


def test_invites_refuse_memory_and_bad_addresses(tmp_path: Path) -> None:
    memory = satchel_cli(["invites", "create", "--store", "memory://"], {})
    assert memory.returncode == 2 and "memory://" in memory.stderr
    store = f"sqlite:///{tmp_path / 'app.db'}"
    (tmp_path / "app.db").touch()
    bad = satchel_cli(["invites", "create", "--email", "a@b\r\nBcc: c@d.e", "--store", store], {})
    assert bad.returncode == 2 and "Traceback" not in bad.stderr
    assert bad.stdout == ""


def test_serve_banner_names_the_mail_transport_without_its_password() -> None:
    from satchel.cli.serve import banner

    text = banner(Settings(mail_url="smtps://mailer:hunter2@mail.example.com:465"), True)
    assert "mail        smtps://mailer:***@mail.example.com:465" in text
    assert "hunter2" not in text
    assert "mail        console://" in banner(Settings(store="sqlite:///x.db"), True)
    assert "mail        none://" in banner(Settings(store="postgresql://db/app"), True)


def test_serve_help_lists_the_mail_flag() -> None:
    done = satchel_cli(["serve", "--help"], {})
    assert done.returncode == 0 and "--mail" in done.stdout
