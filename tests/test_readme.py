"""The README's promises: its FastAPI example runs as written, and its two commands exist."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

from apps import serve

ROOT = Path(__file__).resolve().parent.parent
README = (ROOT / "README.md").read_text(encoding="utf-8")


def fastapi_example() -> str:
    section = README.split("## In your FastAPI app", 1)[1]
    match = re.search(r"```python\n(.*?)```", section, re.S)
    assert match, "README lost its FastAPI example"
    return match.group(1)


def test_example_is_at_most_ten_lines() -> None:
    lines = [line for line in fastapi_example().splitlines() if line.strip()]
    assert len(lines) <= 10


async def test_fastapi_example_runs_as_written(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)  # the example's relative SQLite file lands here
    namespace: dict[str, Any] = {}
    exec(compile(fastapi_example(), "README.md", "exec"), namespace)
    app = namespace["app"]
    async with serve(app, base_url="https://testserver") as client:
        await app.state.satchel_auth.users.create_user("alice", "correct horse battery")
        anonymous = await client.get("/hello")
        assert anonymous.status_code == 401
        assert anonymous.json()["error"] == "not_authenticated"
        token = await client.post(
            "/auth/token",
            data={
                "grant_type": "password",
                "username": "alice",
                "password": "correct horse battery",
            },
        )
        assert token.status_code == 200, token.text
        body = token.json()
        assert body["token_type"] == "Bearer"
        bearer = {"Authorization": f"Bearer {body['access_token']}"}
        hello = await client.get("/hello", headers=bearer)
        assert hello.status_code == 200
        assert hello.json() == {"hello": "alice"}
        # The app's own routes are tried before satchel's (cheaper routing per request).
        routes = app.router.routes
        position = next(i for i, r in enumerate(routes) if getattr(r, "path", None) == "/hello")
        assert position == len(routes) - 2, "satchel's router should be the only entry after /hello"
    assert (tmp_path / "app.db").exists()


def test_readme_commands_exist() -> None:
    for command in ("./scripts/serve", "./scripts/test"):
        assert command in README
        assert (ROOT / command).stat().st_mode & 0o111, f"{command} is not executable"
    ci = (ROOT / ".ci" / "run").read_text(encoding="utf-8")
    assert "scripts/test" in ci
