"""Property tests over every parser that sees attacker input.

For arbitrary input, each parser either answers or raises a :class:`SatchelError`; no other
exception escapes and garbage never yields an identity. The profile comes from
tests/attack/conftest.py (``SATCHEL_FUZZ=long`` for the long run).
"""

from __future__ import annotations

import contextlib
import json
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, given
from hypothesis import settings as hsettings
from hypothesis import strategies as st

from apps import SyncApps
from satchel.accounts.users import normalize_username
from satchel.errors import SatchelError
from satchel.jose import jws
from satchel.jose.jwk import ES256Key, key_from_jwk
from satchel.jose.keyset import KeySet
from satchel.transports.bearer import BearerTransport
from satchel.transports.client_ip import client_ip, parse_networks
from satchel.transports.cookie import CookieTransport
from satchel.transports.csrf import CSRFProtect, parse_origin

KEY = ES256Key.generate(kid="fuzz")
KEYSET = KeySet.verify_only([KEY])
NOW = 1_800_000_000.0

b64chars = st.text(
    alphabet="ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_", max_size=60
)
tokenish = st.one_of(
    st.text(max_size=300),
    st.builds(lambda a, b, c: f"{a}.{b}.{c}", b64chars, b64chars, b64chars),
    st.builds(
        lambda h, p: ".".join([jws.b64url_encode(h), jws.b64url_encode(p), "AAAA"]),
        st.binary(max_size=200),
        st.binary(max_size=200),
    ),
    st.builds(
        lambda h: jws.b64url_encode(json.dumps(h).encode()) + ".e30.AAAA",
        st.dictionaries(
            st.sampled_from(["alg", "kid", "typ", "crit", "b64", "jku"]),
            st.one_of(st.none(), st.integers(), st.text(max_size=10), st.booleans()),
        ),
    ),
)
header_bytes = st.binary(max_size=300)


@given(tokenish)
def test_fuzz_jws_decode(token: str) -> None:
    try:
        jws.decode(token, KEYSET, NOW)
    except SatchelError:
        return
    pytest.fail("garbage verified")


@given(header_bytes)
def test_fuzz_authorization_header(value: bytes) -> None:
    with contextlib.suppress(SatchelError):
        BearerTransport().extract([(b"authorization", value)])


@given(st.lists(header_bytes, max_size=3))
def test_fuzz_cookie_header(values: list[bytes]) -> None:
    transport = CookieTransport()
    try:
        token = transport.extract([(b"cookie", v) for v in values])
    except SatchelError:
        return
    if token is not None:
        assert len(token) <= 8192 and token.isascii()


@given(
    st.one_of(
        st.dictionaries(
            st.text(max_size=5),
            st.one_of(st.text(max_size=50), st.integers(), st.none()),
            max_size=8,
        ),
        st.fixed_dictionaries(
            {
                "kty": st.sampled_from(["EC", "RSA", "OKP", "oct", ""]),
                "crv": st.text(max_size=8),
                "x": b64chars,
                "y": b64chars,
                "n": b64chars,
                "e": b64chars,
                "k": b64chars,
            }
        ),
    )
)
def test_fuzz_jwk(jwk: dict[str, Any]) -> None:
    with contextlib.suppress(SatchelError):
        key_from_jwk(jwk)


@given(st.text(max_size=300), header_bytes, header_bytes)
def test_fuzz_csrf_and_origin(token: str, origin: bytes, site: bytes) -> None:
    csrf = CSRFProtect(b"s" * 32)
    assert not csrf.verify_token(token, "s:x")
    parse_origin(origin.decode("latin-1"))
    try:
        csrf.check(
            "POST",
            [(b"origin", origin), (b"sec-fetch-site", site)],
            own_origin="https://a.example",
            binding="s:x",
            form_token=token,
        )
    except SatchelError:
        return
    assert origin == b"https://a.example" or not origin


@given(st.text(max_size=200), header_bytes)
def test_fuzz_client_ip(peer: str, xff: bytes) -> None:
    result = client_ip(peer, [(b"x-forwarded-for", xff)], parse_networks(["10.0.0.0/8"]))
    assert result is None or len(result) <= 64


@given(st.one_of(st.text(max_size=700), st.integers(), st.none(), st.binary(max_size=20)))
def test_fuzz_username(name: Any) -> None:
    with contextlib.suppress(SatchelError):
        normalize_username(name)


_APP: dict[str, Any] = {}


def _client() -> tuple[httpx.AsyncClient, Any]:
    return _APP["client"], _APP["loop"]


@pytest.fixture(scope="module")
def login_app(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Any:
    with SyncApps(request, tmp_path_factory.mktemp("fuzz")) as apps:
        # The fuzzer would trip the failed-login limits; throttling has its own tests.
        app = apps(
            users={"alice": []},
            password="correct horse battery",
            login_account_limit=0,
            login_ip_limit=0,
        )
        _APP.update(client=app.client, loop=apps.loop)
        yield


@hsettings(suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(
    body=st.one_of(
        st.binary(max_size=400),
        st.builds(
            lambda d: json.dumps(d).encode(),
            st.dictionaries(
                st.sampled_from(["username", "password", "remember", "x"]),
                st.one_of(
                    st.text(max_size=40),
                    st.integers(),
                    st.none(),
                    st.booleans(),
                    st.lists(st.integers(), max_size=3),
                ),
            ),
        ),
    ),
    ctype=st.sampled_from(
        [
            "application/json",
            "application/x-www-form-urlencoded",
            "text/plain",
            "multipart/form-data; boundary=x",
            "",
        ]
    ),
)
def test_fuzz_login_body(login_app: None, body: bytes, ctype: str) -> None:
    client, loop = _client()
    headers = {"content-type": ctype} if ctype else {}
    response = loop.run_until_complete(client.post("/auth/login", content=body, headers=headers))
    assert response.status_code < 500, response.text
    assert response.status_code != 200 or b"correct horse battery" in body
    assert "set-cookie" not in response.headers or response.status_code == 200
