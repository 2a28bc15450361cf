"""The README's Flask and Django examples: at most ten lines each, and they run as written."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parent.parent
README = (ROOT / "README.md").read_text(encoding="utf-8")
PASSWORD = "correct horse battery"


def example(heading: str) -> str:
    section = README.split(heading, 1)[1]
    match = re.search(r"```python\n(.*?)```", section, re.S)
    assert match, f"README lost its example under {heading!r}"
    return match.group(1)


@pytest.mark.parametrize("heading", ["## In your Flask app", "## In your Django project"])
def test_examples_are_at_most_ten_lines(heading: str) -> None:
    lines = [line for line in example(heading).splitlines() if line.strip()]
    assert len(lines) <= 10


def test_flask_example_runs_as_written(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)  # the example's relative SQLite file lands here
    namespace: dict[str, Any] = {"__name__": "__main__"}  # Flask(__name__) needs a module
    exec(compile(example("## In your Flask app"), "README.md", "exec"), namespace)
    app = namespace["app"]
    sync = app.extensions["satchel"].sync
    try:
        sync.call(lambda auth: auth.users.create_user("alice", PASSWORD))
        client = app.test_client()
        anonymous = client.get("/hello")
        assert anonymous.status_code == 401 and anonymous.json["error"] == "not_authenticated"
        token = client.post(
            "/auth/token",
            data={"grant_type": "password", "username": "alice", "password": PASSWORD},
        )
        assert token.status_code == 200, token.get_data()
        bearer = {"Authorization": f"Bearer {token.json['access_token']}"}
        assert client.get("/hello", headers=bearer).json == {"hello": "alice"}
    finally:
        sync.close()
    assert (tmp_path / "app.db").exists()


# Django can be set up once per process: the example runs in a fresh interpreter, on top of
# a minimal project (what `django-admin startproject` gives, trimmed).
BASE_SETTINGS = """
SECRET_KEY = "readme-test"
ALLOWED_HOSTS = ["testserver"]
ROOT_URLCONF = "readme_urls"
INSTALLED_APPS = ["django.contrib.auth", "django.contrib.contenttypes", "django.contrib.sessions"]
MIDDLEWARE = [
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
]
DATABASES = {"default": {"ENGINE": "django.db.backends.sqlite3", "NAME": "db.sqlite3"}}
USE_TZ = True
"""

DRIVER = """
import django, json, os
os.environ["DJANGO_SETTINGS_MODULE"] = "readme_settings"
django.setup()
from django.core.management import call_command
call_command("migrate", verbosity=0)
from django.test import Client
from satchel.integrations.django import get_sync
get_sync().call(lambda auth: auth.users.create_user("alice", {password!r}))
client = Client()
out = {{"anonymous": client.get("/hello").status_code}}
form = {{"grant_type": "password", "username": "alice", "password": {password!r}}}
token = client.post("/auth/token", form)
out["token"] = token.status_code
bearer = {{"Authorization": "Bearer " + token.json()["access_token"]}}
out["hello"] = client.get("/hello", headers=bearer).json()
from django.contrib.auth import get_user_model
out["in_auth_user"] = get_user_model().objects.filter(username="alice").exists()
print(json.dumps(out))
"""


def test_django_example_runs_as_written(tmp_path: Path) -> None:
    code = example("## In your Django project")
    settings_part, urls_part = code.split("# urls.py", 1)
    (tmp_path / "readme_settings.py").write_text(BASE_SETTINGS + settings_part)
    (tmp_path / "readme_urls.py").write_text(urls_part)
    done = subprocess.run(
        [sys.executable, "-c", DRIVER.format(password=PASSWORD)],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
        env={"PYTHONPATH": f"{ROOT / 'src'}:{tmp_path}", "PATH": "/usr/bin:/bin"},
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert result == {
        "anonymous": 401,
        "token": 200,
        "hello": {"hello": "alice"},
        "in_auth_user": True,
    }
    assert (tmp_path / "satchel.db").exists()
