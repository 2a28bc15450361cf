"""The Django integration through Django's own test client, on the example project
(examples/django_project): the shared API flows (tests/api_flows.py) for the session, jwt and
hybrid strategies with accounts in ``auth_user``, Django's CSRF middleware on the project's
views, ``request.user``, Django's PBKDF2 hashes, changes made through Django, and ASGI."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("django")

import api_flows
import stepup_flow
from api_flows import EVIL, ORIGIN, PASSWORD, assert_error, bearer, login, token
from backends import Backends
from django_rig import DjangoBrowser, DjangoRig, setup_django, wipe_accounts
from satchel.accounts.passwords import PasswordHasher
from satchel.clock import ManualClock

STRATEGIES = ("session", "jwt", "hybrid")
HASHER = PasswordHasher.insecure_fast_for_tests()


@pytest.fixture(scope="session")
def django_project(tmp_path_factory: pytest.TempPathFactory) -> None:
    setup_django(tmp_path_factory.mktemp("django") / "db.sqlite3")


@pytest.fixture
def make_rig(django_project: None, request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Any]:
    from django.test import override_settings

    backends = Backends(request, tmp_path)
    overrides: list[Any] = []

    def make(
        strategy: str = "session", store: str = "memory", users: str = "django", **extra: Any
    ) -> DjangoRig:
        clock = ManualClock()
        satchel = {
            **backends.fresh(store).settings(),
            "strategy": strategy,
            "users": users,
            **extra,
        }
        override = override_settings(
            SATCHEL=satchel, SATCHEL_OPTIONS={"hasher": HASHER, "clock": clock}
        )
        override.enable()
        overrides.append(override)
        return DjangoRig(strategy, clock)

    yield make
    for override in reversed(overrides):
        override.disable()
    wipe_accounts()
    asyncio.run(backends.drop())


@pytest.fixture(params=STRATEGIES)
def rig(request: pytest.FixtureRequest, make_rig: Any) -> DjangoRig:
    made: DjangoRig = make_rig(request.param)
    return made


@pytest.mark.parametrize(
    "flow",
    [
        api_flows.cookie_login,
        api_flows.bearer_login,
        api_flows.csrf,
        api_flows.roles,
        api_flows.logout,
        api_flows.revoke_others,
        api_flows.errors,
    ],
    ids=lambda f: f.__name__,
)
def test_flow(rig: DjangoRig, flow: Any) -> None:
    flow(rig)


@pytest.mark.parametrize("strategy", ["jwt", "hybrid"])
def test_refresh(make_rig: Any, strategy: str) -> None:
    api_flows.refresh(make_rig(strategy))


@pytest.mark.parametrize("strategy", STRATEGIES)
def test_fresh_login_required(make_rig: Any, strategy: str) -> None:
    stepup_flow.step_up(make_rig(strategy, access_ttl=900))


def test_fresh_login_required_follows_the_fresh_age_setting(make_rig: Any) -> None:
    stepup_flow.fresh_age_setting(make_rig("hybrid", fresh_age=120))


async def test_fresh_login_required_on_an_async_view(make_rig: Any) -> None:
    from django.http import HttpRequest, JsonResponse
    from django.test import AsyncRequestFactory

    from satchel.integrations.django import fresh_login_required

    rig: DjangoRig = make_rig("session", access_ttl=900)
    rig.create_user("alice")
    access = await asyncio.to_thread(lambda: token(DjangoBrowser())["access_token"])

    @fresh_login_required(max_age=60)
    async def view(request: HttpRequest) -> JsonResponse:
        return JsonResponse({"fresh": request.identity.username})

    def call() -> Any:
        request = AsyncRequestFactory().get("/x", headers=bearer(access), secure=True)
        return view(request)

    assert (await call()).status_code == 200
    rig.clock.advance(61)
    stale = await call()
    assert stale.status_code == 401
    assert stale["WWW-Authenticate"] == stepup_flow.challenge(60)


def test_flows_with_satchels_own_user_store(make_rig: Any) -> None:
    rig: DjangoRig = make_rig("hybrid", users="satchel")
    api_flows.roles(rig)
    from django.contrib.auth import get_user_model

    assert not get_user_model().objects.exists()  # the accounts went to satchel's store


# --- the project's own views and Django's pieces ----------------------------------------------


def test_request_user_is_the_projects_user(rig: DjangoRig) -> None:
    user_id = rig.create_user("alice")
    browser = DjangoBrowser()
    login(browser)
    assert browser.request("GET", "/whoami").json() == {
        "identity": user_id,
        "user": "alice",
        "pk": user_id,
    }
    access = token(DjangoBrowser())["access_token"]
    reply = DjangoBrowser().request("GET", "/whoami", headers=bearer(access))
    assert reply.json()["user"] == "alice"


def test_djangos_csrf_guards_the_projects_views(rig: DjangoRig) -> None:
    rig.create_user("alice")
    browser = DjangoBrowser()
    login(browser)
    # A cookie session posting to the project's view: Django's own middleware decides.
    assert browser.request("POST", "/notes", data={"text": "x"}, headers=EVIL).status == 403
    assert (
        browser.request("POST", "/notes", json="hi", headers=ORIGIN).status == 403
    )  # no csrftoken
    # A bearer client cannot be forged and has no csrftoken: it passes.
    access = token(DjangoBrowser())["access_token"]
    reply = DjangoBrowser().request("POST", "/notes", json="hi", headers={**EVIL, **bearer(access)})
    assert reply.status == 200 and reply.json() == {"note": "hi"}
    # Without any credential Django's middleware answers first (no csrftoken).
    assert DjangoBrowser().request("POST", "/notes", json="hi").status == 403


def test_djangos_pbkdf2_hashes_sign_in_and_are_upgraded_in_djangos_spelling(make_rig: Any) -> None:
    from django.contrib.auth import get_user_model
    from django.contrib.auth.hashers import check_password

    make_rig("session")
    user = get_user_model().objects.create_user("carol", password=PASSWORD)
    assert user.password.startswith("pbkdf2_sha256$")
    browser = DjangoBrowser()
    assert login(browser, "Carol").json()["user_id"] == str(user.pk)  # case-insensitive name
    user.refresh_from_db()
    assert user.password.startswith("argon2$argon2id$")  # upgraded, still Django's format
    assert check_password(PASSWORD, user.password)  # Django (and its admin) still verify it
    assert login(DjangoBrowser(), "carol").status == 200  # and satchel, without a rehash loop
    user.refresh_from_db()
    assert user.password.startswith("argon2$argon2id$")


def test_a_password_changed_through_django_ends_satchel_credentials(rig: DjangoRig) -> None:
    from django.contrib.auth import get_user_model

    user_id = rig.create_user("alice")
    access = token(DjangoBrowser())["access_token"]
    browser = DjangoBrowser()
    login(browser)
    for _ in range(2):  # cached by now
        assert DjangoBrowser().request("GET", "/hello", headers=bearer(access)).status == 200
        assert browser.request("GET", "/hello").status == 200
    rig.clock.advance(1)
    user = get_user_model().objects.get(pk=user_id)
    user.set_password("another passphrase entirely")
    user.save()
    assert_error(DjangoBrowser().request("GET", "/hello", headers=bearer(access)), 401)
    assert_error(browser.request("GET", "/hello"), 401)
    # Deactivating the account does the same.
    rig.clock.advance(1)
    user = get_user_model().objects.get(pk=user_id)
    fresh = DjangoBrowser()
    reply = fresh.request(
        "POST",
        "/auth/login",
        json={"username": "alice", "password": "another passphrase entirely"},
        headers=ORIGIN,
    )
    assert reply.status == 200
    user.is_active = False
    user.save()
    assert_error(fresh.request("GET", "/hello"), 401)


def test_roles_are_groups_and_the_two_flags(rig: DjangoRig) -> None:
    from django.contrib.auth import get_user_model
    from django.contrib.auth.models import Group

    user_id = rig.create_user("alice", ["admin", "staff"])
    user = get_user_model().objects.get(pk=user_id)
    assert user.is_staff and not user.is_superuser
    assert [g.name for g in user.groups.all()] == ["admin"]
    user.groups.add(Group.objects.create(name="Editors"))  # not a role name: kept as it is
    from satchel.integrations.django import get_sync

    get_sync().call(lambda a: a.set_roles(user_id, ["ops"]))
    user = get_user_model().objects.get(pk=user_id)
    assert sorted(g.name for g in user.groups.all()) == ["Editors", "ops"] and not user.is_staff


def test_asgi_requests(make_rig: Any) -> None:
    from django.test import AsyncClient

    rig: DjangoRig = make_rig("hybrid")
    rig.create_user("alice")
    access = token(DjangoBrowser())["access_token"]

    async def scenario() -> None:
        client = AsyncClient()
        headers = {"Authorization": f"Bearer {access}"}
        for _ in range(3):
            response = await client.get("/hello", headers=headers, secure=True)
            assert response.status_code == 200 and response.json() == {"hello": "alice"}
        anonymous = await client.get("/hello", secure=True)
        assert anonymous.status_code == 401 and anonymous.json()["error"] == "not_authenticated"
        logout = await client.post("/auth/logout", headers=headers, secure=True)
        assert logout.status_code == 204
        refused = await client.get("/hello", headers=headers, secure=True)
        assert refused.status_code == 401

    asyncio.run(scenario())


@pytest.mark.parametrize("strategy", STRATEGIES)
async def test_errors_match_the_fastapi_server(make_app: Any, make_rig: Any, strategy: str) -> None:
    server = await make_app("memory", strategy=strategy, users={"alice": []}, password=PASSWORD)
    rig: DjangoRig = await asyncio.to_thread(make_rig, strategy)
    await asyncio.to_thread(rig.create_user, "alice")
    browser = DjangoBrowser()
    for method, path, body, ctype, headers, _, _ in api_flows.ERRORS:
        if not path.startswith("/auth/"):
            continue  # the project's own views: the server has none
        sent = {**headers, **({"content-type": ctype} if ctype else {})}
        expected = await server.client.request(method, path, content=body, headers=sent)
        got = await asyncio.to_thread(
            browser.request, method, path, content=body or None, content_type=ctype, headers=headers
        )
        assert got.status == expected.status_code, (method, path, body[:40], got.body)
        assert got.json() == expected.json(), (method, path)
        for name in ("www-authenticate", "cache-control", "retry-after"):
            assert got.header(name) == expected.headers.get(name), (path, name)
