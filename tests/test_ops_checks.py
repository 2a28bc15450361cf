"""Configuration checked at start: each misconfiguration gives its one-line message, from
``satchel config check`` and from ``satchel serve``, which then refuses to start."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import redis
from click.testing import Result
from typer.testing import CliRunner

from apps import Apps
from procs import PrivateRedis, free_port
from satchel.cli import app

SECRET_PASSWORD = "hunter2-not-for-logs"


def check(tmp_path: Path, env: dict[str, str], *args: str) -> Result:
    base = {"COLUMNS": "80", "SATCHEL_STORE": f"sqlite:///{tmp_path / 'satchel.db'}"}
    return CliRunner().invoke(app, ["config", "check", *args], env={**base, **env})


def problem_line(result: Result, prefix: str) -> str:
    """The one output line starting with ``prefix``; fails when there is none or several."""
    lines = [line for line in result.output.splitlines() if line.startswith(prefix)]
    assert len(lines) == 1, result.output
    return lines[0]


CASES = [
    (
        {
            "SATCHEL_STRATEGY": "jwt",
            "SATCHEL_JWT_ALG": "HS256",
            "SATCHEL_JWT_SECRET": "short-12-chr",
        },
        "Error: SATCHEL_JWT_SECRET: is 12 bytes; an HS256 secret must be at least 32 bytes",
    ),
    (
        {"SATCHEL_STRATEGY": "jwt", "SATCHEL_JWT_SECRET": "s" * 40},
        "Error: SATCHEL_JWT_SECRET: is an HS256 secret but SATCHEL_JWT_ALG is EdDSA",
    ),
    (
        {"SATCHEL_COOKIE_SAMESITE": "none", "SATCHEL_COOKIE_SECURE": "false"},
        "Error: SATCHEL_COOKIE_SAMESITE: none needs Secure cookies",
    ),
    (
        {"SATCHEL_COOKIE_NAME": "__Host-app", "SATCHEL_COOKIE_DOMAIN": "example.com"},
        "Error: SATCHEL_COOKIE_DOMAIN: cannot be used with a __Host- cookie",
    ),
    (
        {"SATCHEL_KEY_PUBLISH_DELAY": "60", "SATCHEL_KEY_RELOAD_INTERVAL": "60"},
        "Error: SATCHEL_KEY_PUBLISH_DELAY: 60 s is shorter than 2 x SATCHEL_KEY_RELOAD_INTERVAL",
    ),
    (
        {"SATCHEL_TRUSTED_PROXIES": "10.0.0.1,0.0.0.0/0"},
        "Error: SATCHEL_TRUSTED_PROXIES: 0.0.0.0/0 trusts every client",
    ),
    (
        {"SATCHEL_TRUSTED_PROXIES": "::/0"},
        "Error: SATCHEL_TRUSTED_PROXIES: ::/0 trusts every client",
    ),
    (
        {"SATCHEL_METRICS_TOKEN": "too-short"},
        "Error: SATCHEL_METRICS_TOKEN: must be at least 32 characters",
    ),
    (
        {"SATCHEL_METRICS_PORT": "8000"},
        "Error: SATCHEL_METRICS_PORT: is the main port (8000)",
    ),
]


@pytest.mark.parametrize(("env", "message"), CASES, ids=[c[1].split(":")[1] for c in CASES])
def test_each_misconfiguration_has_its_line(
    tmp_path: Path, env: dict[str, str], message: str
) -> None:
    result = check(tmp_path, env, "--offline")
    assert result.exit_code == 2, result.output
    line = problem_line(result, message)
    assert line.endswith("."), line  # the whole message on one line
    assert "Traceback" not in result.output
    assert "1 error(s)" in result.output


def test_plain_http_with_secure_cookies_is_a_warning_with_the_fix(tmp_path: Path) -> None:
    result = check(tmp_path, {"SATCHEL_HOST": "0.0.0.0"}, "--offline")
    assert result.exit_code == 0, result.output
    line = problem_line(result, "Warning: SATCHEL_COOKIE_SECURE: cookies are Secure but the server")
    assert "Put TLS in front" in line and "SATCHEL_COOKIE_SECURE=false on a trusted network" in line
    assert "configuration OK (1 warning(s))" in result.output
    # Behind a trusted proxy (TLS ends there), or on loopback, there is nothing to say.
    quiet = check(tmp_path, {"SATCHEL_HOST": "0.0.0.0", "SATCHEL_TRUSTED_PROXIES": "10.0.0.1"})
    assert "Warning" not in quiet.output and quiet.exit_code == 0, quiet.output


def test_an_unreachable_store_is_named_with_its_password_masked(tmp_path: Path) -> None:
    port = free_port()
    result = check(tmp_path, {"SATCHEL_STORE": f"redis://:{SECRET_PASSWORD}@127.0.0.1:{port}/0"})
    assert result.exit_code == 2, result.output
    line = problem_line(
        result, f"Error: SATCHEL_STORE: cannot reach redis://:***@127.0.0.1:{port}/0"
    )
    assert line.endswith(").")
    assert SECRET_PASSWORD not in result.output
    pg = check(
        tmp_path,
        {"SATCHEL_SESSIONS_STORE": f"postgresql://u:{SECRET_PASSWORD}@127.0.0.1:{port}/db"},
    )
    assert pg.exit_code == 2
    problem_line(
        pg, f"Error: SATCHEL_SESSIONS_STORE: cannot reach postgresql://u:***@127.0.0.1:{port}/db"
    )
    assert SECRET_PASSWORD not in pg.output
    missing = check(tmp_path, {"SATCHEL_STORE": "sqlite:////no/such/folder/satchel.db"})
    problem_line(missing, "Error: SATCHEL_STORE: the folder of /no/such/folder/satchel.db does not")


@pytest.fixture
def evicting_redis() -> Iterator[PrivateRedis]:
    if not PrivateRedis.available():
        pytest.skip("redis-server is not installed")
    server = PrivateRedis()
    server.start()
    client = redis.Redis(port=server.port)
    client.config_set("maxmemory-policy", "volatile-lru")
    client.close()
    try:
        yield server
    finally:
        server.stop()


def test_a_redis_that_evicts_keys_is_an_error(tmp_path: Path, evicting_redis: PrivateRedis) -> None:
    result = check(tmp_path, {"SATCHEL_REDIS_URL": evicting_redis.url})
    assert result.exit_code == 2, result.output
    line = problem_line(result, f"Error: SATCHEL_REDIS_URL: Redis at {evicting_redis.url} has")
    assert "maxmemory-policy volatile-lru, which evicts keys" in line
    assert line.endswith("set maxmemory-policy noeviction.")
    client = redis.Redis(port=evicting_redis.port)
    client.config_set("maxmemory-policy", "noeviction")
    client.close()
    assert check(tmp_path, {"SATCHEL_REDIS_URL": evicting_redis.url}).exit_code == 0


def test_the_effective_configuration_masks_secrets(tmp_path: Path) -> None:
    result = check(
        tmp_path,
        {
            "SATCHEL_STRATEGY": "hybrid",
            "SATCHEL_JWT_ALG": "HS256",
            "SATCHEL_JWT_SECRET": "j" * 40,
            "SATCHEL_METRICS_TOKEN": "t" * 40,
            "SATCHEL_REDIS_URL": f"redis://:{SECRET_PASSWORD}@127.0.0.1:1/0",
        },
        "--offline",
    )
    assert result.exit_code == 0, result.output
    assert "j" * 40 not in result.output and "t" * 40 not in result.output
    assert SECRET_PASSWORD not in result.output
    assert problem_line(result, "* SATCHEL_JWT_SECRET").endswith("*** (40 characters)")
    assert problem_line(result, "* SATCHEL_REDIS_URL").endswith("redis://:***@127.0.0.1:1/0")
    assert problem_line(result, "  SATCHEL_LOG_FORMAT").endswith("text")  # a default


def test_invalid_values_are_listed_one_per_line(tmp_path: Path) -> None:
    result = check(tmp_path, {"SATCHEL_LOG_FORMAT": "xml", "SATCHEL_SHUTDOWN_TIMEOUT": "-1"})
    assert result.exit_code == 2, result.output
    problem_line(result, "Error: SATCHEL_LOG_FORMAT: ")
    problem_line(result, "Error: SATCHEL_SHUTDOWN_TIMEOUT: ")
    assert "xml" not in result.output.replace("SATCHEL_LOG_FORMAT", "")


def test_serve_refuses_to_start_on_an_error(tmp_path: Path) -> None:
    env = {
        "COLUMNS": "80",
        "SATCHEL_STORE": f"sqlite:///{tmp_path / 'satchel.db'}",
        "SATCHEL_TRUSTED_PROXIES": "0.0.0.0/0",
        "SATCHEL_COOKIE_SAMESITE": "none",
        "SATCHEL_COOKIE_SECURE": "false",
    }
    result = CliRunner().invoke(app, ["serve", "--port", str(free_port())], env=env)
    assert result.exit_code == 2, result.output
    problem_line(result, "Error: SATCHEL_TRUSTED_PROXIES: 0.0.0.0/0 trusts every client")
    problem_line(result, "Error: SATCHEL_COOKIE_SAMESITE: none needs Secure cookies")
    assert "serving" not in result.output  # never got as far as the banner
    assert not (tmp_path / "satchel.db").exists()  # nor opened the store


async def test_the_sign_in_page_explains_plain_http(make_app: Apps) -> None:
    app = await make_app("memory", base_url="http://auth.example.test", users={"alice": []})
    page = await app.client.get("/login")
    assert page.status_code == 200
    # The pre-session cookie is Secure: over http:// the client keeps it to itself.
    posted = await app.client.post(
        "/login",
        data={"username": "alice", "password": app.password, "csrf_token": "x"},
        headers={"origin": "http://auth.example.test"},
    )
    assert posted.status_code == 403
    assert "plain HTTP" in posted.text and "SATCHEL_COOKIE_SECURE=false" in posted.text

    https = await make_app("memory", users={"alice": []})
    await https.client.get("/login")
    forged = await https.client.post(
        "/login",
        data={"username": "alice", "password": https.password, "csrf_token": "x"},
        headers={"origin": https.base_url},
    )
    assert forged.status_code == 403
    assert "plain HTTP" not in forged.text and "expired" in forged.text
