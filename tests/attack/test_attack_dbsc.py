"""Attacks on device-bound sessions (DBSC): stolen and swapped cookies, forged bound cookies,
hostile proof headers. Every log line of these tests is checked for secrets (log_guard)."""

from __future__ import annotations

import contextlib

import pytest
from hypothesis import given
from hypothesis import strategies as st

from dbsc_client import DbscBrowser, SessionKey, jws
from satchel.dbsc.errors import InvalidProof
from satchel.dbsc.headers import read_proof, read_session_id
from satchel.dbsc.proof import DeviceKey, thumbprint, verify_refresh, verify_registration
from satchel.errors import InvalidInput

from .conftest import COOKIE, PASSWORD, Server, ServerFactory, assert_clean_error

BOUND = "__Host-satchel-bound"
PROTECTED = ("/auth/me", "/auth/sessions")


async def bound_browser(server: Server, username: str = "alice") -> DbscBrowser:
    client = server.fresh_client()
    signed_in = await server.login(username, PASSWORD, client=client)
    browser = DbscBrowser(client)
    assert (await browser.register(signed_in)).status_code == 200
    return browser


def cookies(**values: str) -> dict[str, str]:
    return {"cookie": "; ".join(f"{name}={value}" for name, value in values.items())}


def jar(browser: DbscBrowser, name: str) -> str:
    value = browser.client.cookies.get(name)
    assert value
    return value


async def test_D01_the_session_cookie_alone_is_refused_everywhere(
    make_server: ServerFactory,
) -> None:
    server = await make_server("session")
    browser = await bound_browser(server)
    thief = server.fresh_client()
    stolen = cookies(**{COOKIE: jar(browser, COOKIE)})
    for path in PROTECTED:
        assert_clean_error(await thief.get(path, headers=stolen), 401, "device_binding_required")
    page = await thief.get("/devices", headers={**stolen, "accept": "text/html"})
    assert page.status_code in (302, 303) and "/login" in page.headers["location"]
    # The victim's browser is unaffected.
    assert (await browser.client.get("/auth/me")).status_code == 200


async def test_D02_a_bound_cookie_of_another_session_does_not_fit(
    make_server: ServerFactory,
) -> None:
    server = await make_server("session")
    alice, bob = await bound_browser(server, "alice"), await bound_browser(server, "bob")
    swapped = cookies(**{COOKIE: jar(alice, COOKIE), BOUND: jar(bob, BOUND)})
    answer = await server.fresh_client().get("/auth/me", headers=swapped)
    assert_clean_error(answer, 401, "device_binding_required")


@pytest.mark.parametrize(
    "forge",
    [
        lambda v: v.split(".")[0] + "." + "A" * 43,  # another MAC
        lambda v: str(int(v.split(".")[0]) + 3600) + "." + v.split(".")[1],  # a later expiry
        lambda v: v + "x",
        lambda v: "",
        lambda v: "9" * 13 + "." + v.split(".")[1],
    ],
)
async def test_D03_forged_bound_cookies_are_refused(
    make_server: ServerFactory, forge: object
) -> None:
    server = await make_server("session")
    browser = await bound_browser(server)
    assert callable(forge)
    forged = cookies(**{COOKIE: jar(browser, COOKIE), BOUND: forge(jar(browser, BOUND))})
    answer = await server.fresh_client().get("/auth/me", headers=forged)
    assert_clean_error(answer, 401)


async def test_D04_two_bound_cookies_are_ambiguous(make_server: ServerFactory) -> None:
    server = await make_server("session")
    browser = await bound_browser(server)
    value = jar(browser, BOUND)
    twice = {"cookie": f"{COOKIE}={jar(browser, COOKIE)}; {BOUND}={value}; {BOUND}={value}"}
    assert_clean_error(await server.fresh_client().get("/auth/me", headers=twice), 401)


async def test_D05_a_stolen_session_cookie_cannot_refresh_or_rebind(
    make_server: ServerFactory,
) -> None:
    server = await make_server("session")
    browser = await bound_browser(server)
    thief = DbscBrowser(server.fresh_client(headers=cookies(**{COOKIE: jar(browser, COOKIE)})))
    thief.session_id, thief.refresh_url = browser.session_id, browser.refresh_url
    # Its own key cannot register over the bound session, with or without a challenge.
    token = thief.proof("made-up", registration=True)
    again = await thief.client.post(
        "/auth/dbsc/register", headers={"secure-session-response": token}
    )
    assert_clean_error(again, 400)
    # A refresh signed by its own key is the theft signal: the session ends for everyone.
    assert_clean_error(await thief.refresh(), 401, "dbsc_wrong_key")
    assert_clean_error(await browser.client.get("/auth/me"), 401)


@given(st.binary(max_size=300))
def test_D06_proof_and_session_headers_fail_only_as_client_errors(raw: bytes) -> None:
    for reader, errors in ((read_proof, InvalidProof), (read_session_id, InvalidInput)):
        with contextlib.suppress(errors):  # anything else fails the test
            reader([(b"secure-session-response", raw), (b"sec-secure-session-id", raw)])


@given(st.text(max_size=400))
def test_D07_proof_parsing_fails_only_as_invalid_proof(text: str) -> None:
    key = SessionKey()
    device = DeviceKey("ES256", key.jwk(), thumbprint(key.jwk()))
    for verify in (verify_registration, lambda t: verify_refresh(t, device)):
        with contextlib.suppress(InvalidProof):  # anything else fails the test
            verify(text)


def test_D08_a_proof_over_a_mangled_payload_does_not_verify() -> None:
    key = SessionKey()
    token = jws({"alg": "ES256", "typ": "dbsc+jwt", "jwk": key.jwk()}, {"jti": "c"}, key)
    head, _, signature = token.split(".")
    other = jws({"alg": "ES256", "typ": "dbsc+jwt"}, {"jti": "other"}, key).split(".")[1]
    with pytest.raises(InvalidProof):
        verify_registration(f"{head}.{other}.{signature}")
    assert verify_registration(token).jti == "c"
