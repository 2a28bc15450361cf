"""``/metrics``: scraped from a real ``satchel serve`` after a scripted workload, and the rules
that keep it from being public by accident (a port of its own, or a bearer token)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from apps import Apps
from procs import SatchelServer, free_port, satchel_cli
from satchel.config.build import ConfiguredAuth

PASSWORD = "correct horse battery staple"
TOKEN = "m" * 40

Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


def parse(text: str) -> Samples:
    """Every sample as ``{(name, sorted labels): value}`` (prometheus_client's parser)."""
    out: Samples = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            out[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return out


def value(samples: Samples, name: str, **labels: str) -> float:
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SatchelServer]:
    store = f"sqlite:///{tmp_path_factory.mktemp('metrics') / 'satchel.db'}"
    for name in ("alice", "bob"):
        added = satchel_cli(
            ["users", "add", name, "--password-stdin", "--store", store], {}, PASSWORD + "\n"
        )
        assert added.returncode == 0, added.stderr
    metrics_port = free_port()
    proc = SatchelServer(
        {
            "SATCHEL_STORE": store,
            "SATCHEL_STRATEGY": "hybrid",
            "SATCHEL_METRICS_PORT": str(metrics_port),
            "SATCHEL_REFRESH_GRACE": "0",
            "SATCHEL_LOGIN_ACCOUNT_LIMIT": "3",
            "SATCHEL_LOGIN_IP_LIMIT": "1000",
        },
        "metrics",
    )
    proc.metrics_url = f"http://127.0.0.1:{metrics_port}"  # type: ignore[attr-defined]
    proc.start()
    try:
        proc.wait_ready()
        yield proc
    finally:
        proc.stop()


def scrape(server: SatchelServer) -> Samples:
    response = httpx.get(f"{server.metrics_url}/metrics", timeout=5)  # type: ignore[attr-defined]
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/plain")
    return parse(response.text)


def token_login(base: str, username: str, password: str) -> httpx.Response:
    return httpx.post(
        f"{base}/auth/token",
        data={"grant_type": "password", "username": username, "password": password},
        timeout=10,
    )


def test_counters_after_a_scripted_workload(server: SatchelServer) -> None:
    base = server.url
    before = scrape(server)
    assert value(before, "satchel_logins_total", outcome="success") == 0

    # Two sign-ins, two wrong passwords for alice; bob is locked out after 3 failures.
    pairs = [token_login(base, "alice", PASSWORD).json() for _ in range(2)]
    statuses = [token_login(base, "alice", "wrong password").status_code for _ in range(2)]
    statuses += [token_login(base, "bob", "wrong password").status_code for _ in range(5)]
    failures = statuses.count(400)  # invalid_grant (RFC 6749 section 5.2)
    throttled = statuses.count(429)
    assert failures == 5 and throttled == 2, statuses

    # One refresh rotation, then the retired token again: reuse ends the family.
    first = pairs[0]
    rotated = httpx.post(
        f"{base}/auth/refresh", data={"refresh_token": first["refresh_token"]}, timeout=5
    )
    assert rotated.status_code == 200, rotated.text
    reused = httpx.post(
        f"{base}/auth/refresh", data={"refresh_token": first["refresh_token"]}, timeout=5
    )
    assert reused.status_code == 401, reused.text

    # The second pair's access token, five times: verified once, then from the cache.
    bearer = {"authorization": f"Bearer {pairs[1]['access_token']}"}
    hits_before = value(scrape(server), "satchel_cache_hits_total")
    for _ in range(5):
        assert httpx.get(f"{base}/auth/me", headers=bearer, timeout=5).status_code == 200
    hits = value(scrape(server), "satchel_cache_hits_total") - hits_before
    assert 4 <= hits <= 5  # a token issued here may already be cached: then all five hit
    # A logout, and a password change (which ends every credential of alice).
    fresh = token_login(base, "alice", PASSWORD).json()
    other = token_login(base, "alice", PASSWORD).json()
    out = httpx.post(
        f"{base}/auth/logout",
        headers={"authorization": f"Bearer {fresh['access_token']}"},
        timeout=5,
    )
    assert out.status_code == 204
    changed = httpx.post(
        f"{base}/auth/password",
        json={"current_password": PASSWORD, "new_password": "another long passphrase 42"},
        headers={"authorization": f"Bearer {other['access_token']}"},
        timeout=10,
    )
    assert changed.status_code == 200, changed.text

    after = scrape(server)
    assert value(after, "satchel_logins_total", outcome="success") == 4
    assert value(after, "satchel_logins_total", outcome="failure") == failures
    assert value(after, "satchel_logins_total", outcome="throttled") == throttled
    assert value(after, "satchel_login_failures_total", reason="invalid_login") == failures
    assert value(after, "satchel_login_throttled_total", scope="account") == throttled
    assert value(after, "satchel_refresh_rotations_total") == 1
    assert value(after, "satchel_refresh_reuse_detected_total") == 1
    assert value(after, "satchel_revocations_total", kind="refresh_reuse") == 1
    assert value(after, "satchel_revocations_total", kind="logout") == 1
    assert value(after, "satchel_revocations_total", kind="password_change") == 1

    # Every sign-in that got past the throttle looked the user up once, in SQLite.
    lookups = value(
        after, "satchel_store_call_seconds_count", store="sqlite", operation="get_user_by_name"
    )
    assert lookups == 4 + failures
    assert (
        value(
            after,
            "satchel_store_call_seconds_bucket",
            store="sqlite",
            operation="get_user_by_name",
            le="+Inf",
        )
        == lookups
    )
    assert value(after, "satchel_store_call_seconds_sum", store="sqlite", operation="create") > 0

    assert value(after, "satchel_revocation_bus_connected", kind="sqlite") == 1
    assert 0 <= value(after, "satchel_revocation_bus_lag_seconds", kind="sqlite") < 1
    assert value(after, "process_resident_memory_bytes") > 0
    assert any(name == "python_info" for name, _ in after)


def test_the_metrics_port_serves_only_operations_paths(server: SatchelServer) -> None:
    metrics_url = server.metrics_url  # type: ignore[attr-defined]
    for path in ("/healthz", "/readyz"):
        assert httpx.get(f"{metrics_url}{path}", timeout=5).status_code == 200
    for path in ("/auth/me", "/login", "/.well-known/jwks.json", "/docs"):
        refused = httpx.get(f"{metrics_url}{path}", timeout=5)
        assert refused.status_code == 404, path
        assert refused.json() == {"error": "not_found", "detail": "Not Found"}
    # ... and the main port has no /metrics at all (no token is configured).
    main = httpx.get(f"{server.url}/metrics", timeout=5)
    assert main.status_code == 404
    assert "satchel_" not in main.text


async def test_a_token_guards_metrics_on_the_main_port(make_app: Apps) -> None:
    app = await make_app("memory", metrics_token=TOKEN, users={"alice": []})
    assert (await app.client.get("/metrics")).status_code == 401
    wrong = await app.client.get("/metrics", headers={"authorization": "Bearer " + "x" * 40})
    assert wrong.status_code == 401
    assert wrong.json()["error"] == "invalid_credential"
    assert TOKEN not in wrong.text
    await app.client.post(
        "/auth/token",
        data={"grant_type": "password", "username": "alice", "password": app.password},
    )
    good = await app.client.get("/metrics", headers={"authorization": f"Bearer {TOKEN}"})
    assert good.status_code == 200
    assert value(parse(good.text), "satchel_logins_total", outcome="success") == 1


async def test_metrics_are_off_by_default_and_nothing_is_timed(make_app: Apps) -> None:
    app = await make_app("sqlite")
    response = await app.client.get("/metrics", headers={"authorization": f"Bearer {TOKEN}"})
    assert response.status_code == 404
    assert isinstance(app.auth, ConfiguredAuth) and app.auth.bounded is not None
    assert app.auth.bounded.sessions.observer is None  # type: ignore[attr-defined]


def test_metrics_module_needs_no_framework(tmp_path: Path) -> None:
    """The counting half imports with the core's dependencies only (no prometheus, no web
    framework): a core module may use it."""
    import subprocess
    import sys

    code = (
        "import sys, satchel.ops.metrics, satchel.ops.readiness, satchel.ops.checks, "
        "satchel.ops.shutdown\n"
        "bad = [m for m in ('fastapi', 'starlette', 'prometheus_client', 'uvicorn') "
        "if m in sys.modules]\n"
        "assert not bad, bad\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr
