"""Cookie and bearer transports: exact attributes, strict parsing, fail-closed ambiguity."""

from __future__ import annotations

import string
from dataclasses import replace

import pytest

from satchel.errors import (
    AmbiguousCredentials,
    ConfigurationError,
    ExpiredCredential,
    InvalidCredential,
    MissingCredential,
)
from satchel.transports import BearerTransport, CookieTransport, IssuedCredentials

TOKEN = "abcDEF123_-xyz0123456.s3cr3t-VALUE_with_enough_length_for_tests_0"
ISSUED = IssuedCredentials(access_token=TOKEN, expires_in=3600, session_id="abc")
REMEMBERED = replace(ISSUED, remember=True)


def cookie_headers(*values: str) -> list[tuple[bytes, bytes]]:
    return [(b"host", b"example.test")] + [(b"cookie", v.encode()) for v in values]


# --- cookie: attributes (S09, S03) -----------------------------------------------------------


def test_S09_default_cookie_attributes_exact() -> None:
    headers = CookieTransport().login_headers(REMEMBERED)
    assert headers == [
        (
            "set-cookie",
            f"__Host-satchel={TOKEN}; Max-Age=3600; Path=/; Secure; HttpOnly; SameSite=Lax",
        ),
        ("cache-control", "no-store"),
    ]


def test_not_remembered_is_a_browser_session_cookie() -> None:
    """Without "remember this device" nothing tells the browser to keep the cookie past
    its own session (no Max-Age, no Expires); the credential still expires on the server."""
    headers = CookieTransport().login_headers(ISSUED)
    assert headers == [
        ("set-cookie", f"__Host-satchel={TOKEN}; Path=/; Secure; HttpOnly; SameSite=Lax"),
        ("cache-control", "no-store"),
    ]
    assert CookieTransport().set_cookie_value(ISSUED) == headers[0][1]
    assert "Max-Age=3600" in CookieTransport().set_cookie_value(REMEMBERED)


def test_S03_logout_clears_with_identical_attributes_and_no_store() -> None:
    transport = CookieTransport()
    login = transport.login_headers(REMEMBERED)[0][1]
    headers = transport.logout_headers()
    assert headers[0] == (
        "set-cookie",
        "__Host-satchel=; Max-Age=0; Path=/; Secure; HttpOnly; SameSite=Lax",
    )
    # Same attributes as at login apart from value and Max-Age.
    assert login.split("; ")[2:] == headers[0][1].split("; ")[2:]
    assert headers[1] == (
        "set-cookie",
        "__Secure-satchel-refresh=; Max-Age=0; Path=/auth/refresh; Secure; HttpOnly; SameSite=Lax",
    )
    assert ("cache-control", "no-store") in headers


def test_refresh_cookie_only_when_issued_with_refresh_token() -> None:
    transport = CookieTransport()
    issued = IssuedCredentials(
        access_token=TOKEN,
        expires_in=300,
        refresh_token="r.e.f",
        refresh_expires_in=86400,
        remember=True,
    )
    headers = transport.login_headers(issued)
    assert headers == [
        (
            "set-cookie",
            f"__Host-satchel={TOKEN}; Max-Age=300; Path=/; Secure; HttpOnly; SameSite=Lax",
        ),
        (
            "set-cookie",
            "__Secure-satchel-refresh=r.e.f; Max-Age=86400; Path=/auth/refresh; Secure; "
            "HttpOnly; SameSite=Lax",
        ),
        ("cache-control", "no-store"),
    ]
    assert transport.extract_refresh(cookie_headers("__Secure-satchel-refresh=r.e.f")) == "r.e.f"
    assert transport.extract(cookie_headers("__Secure-satchel-refresh=r.e.f")) is None
    # Not remembered: the refresh cookie is a browser-session cookie too.
    forgotten = transport.login_headers(replace(issued, remember=False))
    assert forgotten[:2] == [
        ("set-cookie", f"__Host-satchel={TOKEN}; Path=/; Secure; HttpOnly; SameSite=Lax"),
        (
            "set-cookie",
            "__Secure-satchel-refresh=r.e.f; Path=/auth/refresh; Secure; HttpOnly; SameSite=Lax",
        ),
    ]


def test_attributes_are_the_ones_set_cookie_carries() -> None:
    transport = CookieTransport(same_site="strict")
    assert transport.attributes() == ["Path=/", "Secure", "HttpOnly", "SameSite=Strict"]
    assert transport.attributes(refresh=True)[0] == "Path=/auth/refresh"
    headers = transport.login_headers(
        IssuedCredentials(access_token=TOKEN, expires_in=60, refresh_token="r.e.f")
    )
    assert headers[0][1].split("; ")[1:] == transport.attributes()
    assert headers[1][1].split("; ")[1:] == transport.attributes(refresh=True)


def test_issued_credentials_repr_holds_no_token() -> None:
    text = repr(REMEMBERED)
    assert TOKEN not in text and "remember=True" in text


def test_insecure_only_when_explicit_and_name_drops_host_prefix() -> None:
    transport = CookieTransport(secure=False)
    value = transport.login_headers(REMEMBERED)[0][1]
    assert value == f"satchel_session={TOKEN}; Max-Age=3600; Path=/; HttpOnly; SameSite=Lax"
    assert transport.refresh_name == "satchel_refresh"
    assert transport.extract(cookie_headers(f"satchel_session={TOKEN}")) == TOKEN


def test_strict_same_site_and_domain_rendering() -> None:
    transport = CookieTransport(same_site="Strict", domain="example.test")
    value = transport.login_headers(REMEMBERED)[0][1]
    # __Host- cannot carry a Domain, so the default name falls back to __Secure-.
    assert value == (
        f"__Secure-satchel={TOKEN}; Max-Age=3600; Path=/; Domain=example.test; Secure; "
        "HttpOnly; SameSite=Strict"
    )


@pytest.mark.parametrize(
    "kwargs",
    [
        {"same_site": "none", "secure": False},  # S09: browsers drop it; never allowed
        {"name": "__Host-satchel", "domain": "example.test"},
        {"name": "__Host-satchel", "path": "/app"},
        {"name": "__Host-satchel", "secure": False},
        {"name": "__Secure-x", "secure": False},
        {"name": "__host-satchel"},  # mis-cased prefix: the browser would not enforce it
        {"same_site": "sometimes"},
        {"same_site": ""},
        {"name": "bad name"},
        {"name": "a;b"},
        {"path": "relative"},
        {"path": "/a; Domain=evil.test"},
        {"domain": "evil.test; Secure"},
        {"name": "same", "refresh_name": "same"},
    ],
)
def test_S09_unsafe_cookie_configuration_rejected(kwargs: dict[str, object]) -> None:
    with pytest.raises(ConfigurationError):
        CookieTransport(**kwargs)  # type: ignore[arg-type]


def test_same_site_none_with_secure_is_allowed() -> None:
    value = CookieTransport(same_site="None").login_headers(ISSUED)[0][1]
    assert value.endswith("; Secure; HttpOnly; SameSite=None")


def test_unsafe_credential_never_emitted() -> None:
    bad = IssuedCredentials(access_token="x; Domain=evil.test", expires_in=60)
    with pytest.raises(ConfigurationError):
        CookieTransport().login_headers(bad)


# --- cookie: parsing (S11) ---------------------------------------------------------------------


def test_cookie_found_among_others_with_ows() -> None:
    transport = CookieTransport()
    headers = cookie_headers(f"theme=dark;  __Host-satchel={TOKEN} ;\tother=1")
    assert transport.extract(headers) == TOKEN


def test_cookie_absent_or_empty_is_no_credential() -> None:
    transport = CookieTransport()
    assert transport.extract([]) is None
    assert transport.extract(cookie_headers("theme=dark")) is None
    assert transport.extract(cookie_headers("__Host-satchel=")) is None
    # A name that merely contains ours is somebody else's cookie.
    assert transport.extract(cookie_headers(f"x__Host-satchel={TOKEN}")) is None
    assert transport.extract(cookie_headers(f"__Host-satchel2={TOKEN}")) is None


def test_S11_duplicate_cookie_in_one_header_rejected() -> None:
    transport = CookieTransport()
    with pytest.raises(InvalidCredential):
        transport.extract(cookie_headers(f"__Host-satchel={TOKEN}; __Host-satchel=other.value"))


def test_S11_duplicate_cookie_across_headers_rejected() -> None:
    transport = CookieTransport()
    with pytest.raises(InvalidCredential):
        transport.extract(cookie_headers(f"__Host-satchel={TOKEN}", f"a=1; __Host-satchel={TOKEN}"))


def test_S11_wrong_case_prefix_is_not_our_cookie() -> None:
    transport = CookieTransport()
    assert transport.extract(cookie_headers(f"__host-satchel={TOKEN}")) is None
    assert transport.extract(cookie_headers(f"__HOST-satchel={TOKEN}; __Host-satchel=ok")) == "ok"


@pytest.mark.parametrize(
    "value",
    [
        f'"{TOKEN}"',
        "abc def",
        "abc,def",
        "abc\\def",
        "abc%3Bdef",
        "ab\x00c",
        "é",
        "x" * 8193,
    ],
)
def test_S10_malformed_cookie_value_rejected(value: str) -> None:
    headers = [(b"cookie", b"__Host-satchel=" + value.encode("utf-8"))]
    with pytest.raises(InvalidCredential):
        CookieTransport().extract(headers)


def test_cookie_value_length_limit_inclusive() -> None:
    value = "x" * 8192
    assert CookieTransport().extract(cookie_headers(f"__Host-satchel={value}")) == value


def test_S08_cookie_transport_ignores_other_headers() -> None:
    headers = [(b"x-session", TOKEN.encode()), (b"authorization", f"Bearer {TOKEN}".encode())]
    assert CookieTransport().extract(headers) is None


# --- bearer ------------------------------------------------------------------------------------


def auth_header(value: bytes) -> list[tuple[bytes, bytes]]:
    return [(b"host", b"example.test"), (b"authorization", value)]


@pytest.mark.parametrize("scheme", [b"Bearer", b"bearer", b"BEARER", b"bEaReR"])
def test_bearer_scheme_case_insensitive(scheme: bytes) -> None:
    assert BearerTransport().extract(auth_header(scheme + b" " + TOKEN.encode())) == TOKEN


def test_bearer_token68_with_padding_and_jwt_shape() -> None:
    transport = BearerTransport()
    assert transport.extract(auth_header(b"Bearer a.b.c")) == "a.b.c"
    assert transport.extract(auth_header(b"Bearer abc+/~==")) == "abc+/~=="


@pytest.mark.parametrize(
    "value",
    [
        b"Bearer",
        b"Bearer ",
        b"Bearer  abc",
        b"Bearer\tabc",
        b"Bearer abc def",
        b"Bearer abc=def",
        b'Bearer ab"c',
        b"Bearer abc\x00",
        b"Bearer \xc3\xa9",
        b"Bearer " + b"a" * 8193,
    ],
)
def test_malformed_bearer_rejected(value: bytes) -> None:
    with pytest.raises(InvalidCredential):
        BearerTransport().extract(auth_header(value))


def test_bearer_length_limit_inclusive() -> None:
    token = "a" * 8192
    assert BearerTransport().extract(auth_header(b"Bearer " + token.encode())) == token


def test_two_authorization_headers_rejected() -> None:
    headers = [(b"authorization", b"Bearer abc"), (b"authorization", b"Basic Zm9vOmJhcg==")]
    with pytest.raises(InvalidCredential):
        BearerTransport().extract(headers)


@pytest.mark.parametrize("value", [b"Basic Zm9vOmJhcg==", b"Bearerx abc", b"Digest a=b"])
def test_other_schemes_are_not_ours(value: bytes) -> None:
    assert BearerTransport().extract(auth_header(value)) is None


def test_S08_bearer_never_reads_other_places() -> None:
    headers = [
        (b"x-access-token", TOKEN.encode()),
        (b"cookie", f"access_token={TOKEN}".encode()),
    ]
    assert BearerTransport().extract(headers) is None
    assert BearerTransport().extract([]) is None


def test_bearer_login_headers_only_no_store() -> None:
    assert BearerTransport().login_headers(ISSUED) == [("cache-control", "no-store")]


def test_bearer_challenge_without_credential() -> None:
    transport = BearerTransport()
    expected = [("www-authenticate", 'Bearer realm="satchel"')]
    assert transport.challenge_headers(None) == expected
    assert transport.challenge_headers(MissingCredential()) == expected


def test_bearer_challenge_for_rejected_credential() -> None:
    transport = BearerTransport(realm="api")
    assert transport.challenge_headers(InvalidCredential("Unknown session.")) == [
        (
            "www-authenticate",
            'Bearer realm="api", error="invalid_token", error_description="Unknown session."',
        )
    ]
    expired = transport.challenge_headers(ExpiredCredential())[0][1]
    assert expired.endswith('error="invalid_token", error_description="The access token expired"')
    ambiguous = transport.challenge_headers(AmbiguousCredentials())[0][1]
    assert 'error="invalid_request"' in ambiguous


def test_bearer_challenge_description_is_quote_safe() -> None:
    header = BearerTransport().challenge_headers(InvalidCredential('bad "x"\r\nSet-Cookie: a=b'))
    value = header[0][1]
    assert "\r" not in value and "\n" not in value
    assert value.endswith('error_description="bad xSet-Cookie: a=b"')


@pytest.mark.parametrize("realm", ["", 'a"b', "a\\b", "a\nb", "é"])
def test_bad_realm_rejected(realm: str) -> None:
    with pytest.raises(ConfigurationError):
        BearerTransport(realm=realm)


CREDENTIAL_BYTES = (string.ascii_letters + string.digits + "_-.").encode()


def reference_cookie(values: list[bytes], name: bytes) -> str | type[InvalidCredential] | None:
    """The RFC 6265 reading: split on ';', name before the first '=', whitespace trimmed."""
    hits = [
        value.strip(b" \t")
        for raw in values
        for pair in raw.split(b";")
        for key, eq, value in [pair.partition(b"=")]
        if eq and key.strip(b" \t") == name
    ]
    if len(hits) > 1:
        return InvalidCredential
    if not hits or not hits[0]:
        return None
    if len(hits[0]) > 8192 or not all(c in CREDENTIAL_BYTES for c in hits[0]):
        return InvalidCredential
    return hits[0].decode()


def test_cookie_scan_matches_reference_split_parser() -> None:
    import random

    rng = random.Random(6265)
    parts = [
        b"__Host-satchel",
        b"__host-satchel",
        b"x__Host-satchel",
        b"=",
        b";",
        b" ",
        b"\t",
        b"a",
        b"Z",
        b"0",
        b"_",
        b"-",
        b".",
        b'"',
        b",",
        b"__Host-satchel=",
    ]
    transport = CookieTransport()
    for _ in range(20_000):
        values = [
            b"".join(rng.choice(parts) for _ in range(rng.randint(0, 8)))
            for _ in range(rng.randint(1, 2))
        ]
        expected = reference_cookie(values, b"__Host-satchel")
        headers = [(b"cookie", v) for v in values]
        if expected is InvalidCredential:
            with pytest.raises(InvalidCredential):
                transport.extract(headers)
        else:
            assert transport.extract(headers) == expected, values


def test_bearer_scan_matches_token68_grammar() -> None:
    """The byte-table check accepts exactly RFC 9110 token68: 1*( ALPHA / DIGIT / "-" / "." /
    "_" / "~" / "+" / "/" ) *"=" — compared with the grammar as a regex on random input."""
    import random
    import re

    token68 = re.compile(rb"[A-Za-z0-9\-._~+/]+=*")
    rng = random.Random(9110)
    alphabet = b'Aa0-._~+/=  \t\x00\xff;,"\\=='
    transport = BearerTransport()
    for _ in range(20_000):
        token = bytes(rng.choice(alphabet) for _ in range(rng.randint(0, 6)))
        headers = auth_header(b"Bearer " + token)
        if token68.fullmatch(token):
            assert transport.extract(headers) == token.decode(), token
        else:
            with pytest.raises(InvalidCredential):
                transport.extract(headers)
