"""The strict JWS decoder against the token-layer checklist items (J01-J08, J15-J23)."""

from __future__ import annotations

import base64
import datetime
import hashlib
import hmac
import json
import socket
import time
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature
from cryptography.x509.oid import NameOID
from hypothesis import given, settings
from hypothesis import strategies as st

from satchel.errors import ConfigurationError, InvalidToken
from satchel.jose import jws
from satchel.jose.jwk import P256_ORDER, Ed25519Key, ES256Key, HS256Key, RS256Key, SigningKey
from satchel.jose.keyset import KeySet

NOW = 1_800_000_000.0
PAYLOAD = {"sub": "alice", "n": 1}


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def raw_json(value: Any) -> bytes:
    return value if isinstance(value, bytes) else json.dumps(value).encode()


def forge(header: Any, payload: Any, key: SigningKey | None = None, sig: bytes = b"") -> str:
    """A compact token with exactly these bytes, signed by ``key`` (or carrying ``sig``)."""
    signing_input = f"{b64(raw_json(header))}.{b64(raw_json(payload))}"
    if key is not None:
        sig = key.sign(signing_input.encode())
    return f"{signing_input}.{b64(sig)}"


def hs256_with(secret: bytes, header: Any, payload: Any = PAYLOAD) -> str:
    signing_input = f"{b64(raw_json(header))}.{b64(raw_json(payload))}"
    mac = hmac.new(secret, signing_input.encode(), hashlib.sha256).digest()
    return f"{signing_input}.{b64(mac)}"


@pytest.fixture(scope="module")
def rsa_key() -> RS256Key:
    return RS256Key.generate("rsa-1", bits=2048)


@pytest.fixture(scope="module")
def keys(rsa_key: RS256Key) -> dict[str, SigningKey]:
    return {
        "EdDSA": Ed25519Key.generate("ed-1"),
        "ES256": ES256Key.generate("es-1"),
        "RS256": rsa_key,
        "HS256": HS256Key.generate("hs-1"),
    }


@pytest.fixture(scope="module")
def keyset(keys: dict[str, SigningKey]) -> KeySet:
    return KeySet(keys["EdDSA"], [(k, None) for a, k in keys.items() if a != "EdDSA"])


def rejected(token: object, keyset: KeySet) -> InvalidToken:
    with pytest.raises(InvalidToken) as info:
        jws.decode(token, keyset, NOW)
    if isinstance(token, str) and len(token) > 20:
        assert token not in str(info.value) and token[:20] not in info.value.detail
    return info.value


@pytest.mark.parametrize("alg", ["EdDSA", "ES256", "RS256", "HS256"])
def test_roundtrip(alg: str, keys: dict[str, SigningKey], keyset: KeySet) -> None:
    token = jws.encode({"typ": "at+jwt"}, PAYLOAD, keys[alg])
    header, payload = jws.decode(token, keyset, NOW)
    assert header == {"alg": alg, "kid": keys[alg].kid, "typ": "at+jwt"}
    assert payload == PAYLOAD
    assert (
        jws.decode_raw(token, keyset, NOW)[1] == json.dumps(PAYLOAD, separators=(",", ":")).encode()
    )


@pytest.mark.parametrize("alg", ["EdDSA", "HS256"])
def test_remembered_header_never_stands_in_for_a_signature(
    alg: str, keys: dict[str, SigningKey], keyset: KeySet
) -> None:
    # The first token's header is remembered after its signature verified; a second token
    # with the very same header still needs its own valid signature.
    first = jws.encode({"typ": "at+jwt"}, PAYLOAD, keys[alg])
    header, _ = jws.decode(first, keyset, NOW)
    header["kid"] = "changed by the caller"  # callers get their own copy
    second = jws.encode({"typ": "at+jwt"}, {**PAYLOAD, "sub": "someone-else"}, keys[alg])
    assert second.split(".")[0] == first.split(".")[0]
    head, body, _ = second.split(".")
    assert "signature" in rejected(f"{head}.{body}.{first.split('.')[2]}", keyset).detail
    assert jws.decode(second, keyset, NOW)[0]["kid"] == keys[alg].kid


def test_encode_refuses_header_overrides(keys: dict[str, SigningKey]) -> None:
    for extra in ({"alg": "none"}, {"kid": "x"}, {"jku": "http://x"}, {"crit": ["exp"]}):
        with pytest.raises(ConfigurationError):
            jws.encode(extra, PAYLOAD, keys["EdDSA"])
    with pytest.raises(ConfigurationError):
        jws.encode(None, {"n": float("nan")}, keys["EdDSA"])
    with pytest.raises(ConfigurationError):
        jws.encode(None, {"big": "x" * 9000}, keys["EdDSA"])


# --- J01 / J02 ----------------------------------------------------------------------------


@pytest.mark.parametrize("alg", ["none", "None", "NONE", "nOnE", ""])
def test_J01_alg_none(alg: str, keys: dict[str, SigningKey], keyset: KeySet) -> None:
    good = jws.encode(None, PAYLOAD, keys["HS256"])
    copied_sig = good.rsplit(".", 1)[1]
    for kid in ("hs-1", "ed-1"):
        header = {"alg": alg, "kid": kid}
        rejected(forge(header, PAYLOAD)[:-1], keyset)  # empty signature: "h.p."
        rejected(forge(header, PAYLOAD) + copied_sig, keyset)  # copied signature


def test_J02_missing_or_truncated_parts(keys: dict[str, SigningKey], keyset: KeySet) -> None:
    token = jws.encode(None, PAYLOAD, keys["EdDSA"])
    h, p, s = token.split(".")
    for bad in [
        "",
        ".",
        "..",
        h,
        f"{h}.{p}",
        f"{h}.{p}.",
        f".{p}.{s}",
        f"{h}..{s}",
        token[:-1],
        token[:-4],
        f"{h}.{p}.{s[:43]}",
    ]:
        rejected(bad, keyset)


# --- J03 / J04: the header never picks the algorithm --------------------------------------


def _public_encodings(key: SigningKey) -> dict[str, bytes]:
    public = key._public  # type: ignore[attr-defined]
    pem = public.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    forms = {
        "pem-spki": pem,
        "pem-crlf": pem.replace(b"\n", b"\r\n"),
        "pem-no-newline": pem.rstrip(b"\n"),
        "pem-extra-space": b"  " + pem + b"\n\n",
        "der": public.public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
        ),
        "openssh": public.public_bytes(
            serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH
        ),
        "jwk": json.dumps(key.public_jwk()).encode(),
        "jwk-compact": json.dumps(key.public_jwk(), separators=(",", ":")).encode(),
        "jwks": json.dumps({"keys": [key.public_jwk()]}).encode(),
    }
    if isinstance(key, RS256Key):
        forms["pem-pkcs1"] = public.public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.PKCS1
        )
    private = key._private  # type: ignore[attr-defined]
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "satchel")])
    when = datetime.datetime(2030, 1, 1, tzinfo=datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(public)
        .serial_number(1)
        .not_valid_before(when)
        .not_valid_after(when + datetime.timedelta(days=1))
        .sign(private, None if isinstance(key, Ed25519Key) else hashes.SHA256())
    )
    forms["x509-pem"] = cert.public_bytes(serialization.Encoding.PEM)
    forms["x509-der"] = cert.public_bytes(serialization.Encoding.DER)
    return forms


@pytest.mark.parametrize("alg", ["EdDSA", "ES256", "RS256"])
def test_J03_hs256_with_public_key_as_secret(
    alg: str, keys: dict[str, SigningKey], keyset: KeySet
) -> None:
    key = keys[alg]
    for form, secret in _public_encodings(key).items():
        token = hs256_with(secret, {"alg": "HS256", "kid": key.kid, "typ": "at+jwt"})
        err = rejected(token, keyset)
        assert "algorithm" in err.detail, form


def test_J04_wrong_key_family(keys: dict[str, SigningKey], keyset: KeySet) -> None:
    # Each token is validly signed by some key, but names another key of another family.
    for signer, target in [
        ("RS256", "ES256"),
        ("ES256", "EdDSA"),
        ("EdDSA", "RS256"),
        ("HS256", "ES256"),
        ("ES256", "HS256"),
    ]:
        header = {"alg": keys[signer].alg, "kid": keys[target].kid}
        rejected(forge(header, PAYLOAD, keys[signer]), keyset)
        header = {"alg": keys[target].alg, "kid": keys[target].kid}
        rejected(forge(header, PAYLOAD, keys[signer]), keyset)


@pytest.mark.parametrize(
    "alg",
    ["hs256", "HS256 ", " HS256", "HS256\u0000", "HS512", "Hs256", 123, None, [], ["HS256"], {}],
)
def test_J05_alg_spelling_rejected(alg: Any, keys: dict[str, SigningKey], keyset: KeySet) -> None:
    key = keys["HS256"]
    rejected(forge({"alg": alg, "kid": key.kid}, PAYLOAD, key), keyset)
    rejected(forge({"kid": key.kid}, PAYLOAD, key), keyset)  # no alg at all


@pytest.mark.parametrize(
    "kid",
    [
        "../../dev/null",
        "/dev/null",
        "",
        "' OR '1'='1",
        "|sleep 10",
        "x" * 10_000,
        "x" * 129,
        123,
        {},
        [],
        None,
        True,
        "HS-1",
        "hs-1 ",
    ],
)
def test_J06_bad_kid_rejected(kid: Any, keys: dict[str, SigningKey], keyset: KeySet) -> None:
    key = keys["HS256"]
    rejected(forge({"alg": "HS256", "kid": kid}, PAYLOAD, key), keyset)


def test_J06_unknown_kid_never_falls_back(keys: dict[str, SigningKey]) -> None:
    key = keys["EdDSA"]
    single = KeySet(key)
    with pytest.raises(jws.UnknownKey):
        jws.decode(forge({"alg": "EdDSA", "kid": "other"}, PAYLOAD, key), single, NOW)
    with pytest.raises(InvalidToken):
        jws.decode(forge({"alg": "EdDSA"}, PAYLOAD, key), single, NOW)


# --- J07 / J08: key references are refused, never fetched ----------------------------------


def test_J07_jku_x5u_never_fetched(
    monkeypatch: pytest.MonkeyPatch, keys: dict[str, SigningKey], keyset: KeySet
) -> None:
    attempts: list[object] = []

    def no_connect(self: socket.socket, address: object) -> None:
        attempts.append(address)
        pytest.fail(f"outbound connection attempted to {address!r}")

    monkeypatch.setattr(socket.socket, "connect", no_connect)
    monkeypatch.setattr(socket.socket, "connect_ex", no_connect)
    key = keys["ES256"]
    for member in ("jku", "x5u"):
        for url in ("http://127.0.0.1:9/jwks.json", "https://127.0.0.1/k", "file:///etc/passwd"):
            header = {"alg": "ES256", "kid": key.kid, member: url}
            err = rejected(forge(header, PAYLOAD, key), keyset)  # validly signed by our key
            assert "unsupported" in err.detail
    assert attempts == []


def test_J08_embedded_attacker_key(keys: dict[str, SigningKey], keyset: KeySet) -> None:
    attacker = ES256Key.generate("es-1")  # same kid as ours
    jwk = attacker.public_jwk()
    cert_chain = [base64.b64encode(b"not really a cert").decode()]
    for extra in ({"jwk": jwk}, {"x5c": cert_chain}, {"x5t": "abc"}, {"x5t#S256": "abc"}):
        header = {"alg": "ES256", "kid": "es-1", **extra}
        rejected(forge(header, PAYLOAD, attacker), keyset)
        rejected(forge(header, PAYLOAD, keys["ES256"]), keyset)  # even when we signed it
    # And with no embedded key, the attacker's signature does not verify against ours.
    rejected(forge({"alg": "ES256", "kid": "es-1"}, PAYLOAD, attacker), keyset)


# --- J15 / J16 ------------------------------------------------------------------------------


@pytest.mark.parametrize("crit", [["exp"], [], ["b64"], ["urn:x"], "exp", None, {}, 1])
def test_J15_crit_rejected(crit: Any, keys: dict[str, SigningKey], keyset: KeySet) -> None:
    key = keys["EdDSA"]
    rejected(forge({"alg": "EdDSA", "kid": key.kid, "crit": crit, "exp": 1}, PAYLOAD, key), keyset)


@pytest.mark.parametrize("b64_value", [False, True, "false", None])
def test_J16_b64_rejected(b64_value: Any, keys: dict[str, SigningKey], keyset: KeySet) -> None:
    key = keys["EdDSA"]
    header = {"alg": "EdDSA", "kid": key.kid, "b64": b64_value, "crit": ["b64"]}
    rejected(forge(header, PAYLOAD, key), keyset)
    del header["crit"]
    rejected(forge(header, PAYLOAD, key), keyset)


def test_jwe_members_rejected(keys: dict[str, SigningKey], keyset: KeySet) -> None:
    key = keys["EdDSA"]
    for extra in ({"enc": "A256GCM"}, {"zip": "DEF"}):
        rejected(forge({"alg": "EdDSA", "kid": key.kid, **extra}, PAYLOAD, key), keyset)


# --- J17 / J18 / J19 ------------------------------------------------------------------------


def test_J17_duplicate_members(keys: dict[str, SigningKey], keyset: KeySet) -> None:
    key = keys["HS256"]
    rejected(forge(b'{"alg":"HS256","kid":"hs-1","alg":"none"}', PAYLOAD, key), keyset)
    rejected(forge(b'{"alg":"HS256","alg":"HS256","kid":"hs-1"}', PAYLOAD, key), keyset)
    header = {"alg": "HS256", "kid": "hs-1"}
    rejected(forge(header, b'{"sub":"alice","sub":"admin"}', key), keyset)
    rejected(forge(header, b'{"a":{"x":1,"x":2}}', key), keyset)  # nested objects too
    assert jws.decode(forge(header, b'{"a":{"x":1},"b":{"x":2}}', key), keyset, NOW)[1]["b"] == {
        "x": 2
    }


def test_J18_other_serializations_and_alphabet(keys: dict[str, SigningKey], keyset: KeySet) -> None:
    key = keys["HS256"]
    token = jws.encode(None, PAYLOAD, key)
    h, p, s = token.split(".")
    json_serialization = json.dumps({"payload": p, "protected": h, "signature": s})
    bad = [
        json_serialization,
        f"{h}.{p}.{s}.{s}.{s}",
        f"{h}.{p}.{s}.x",
        token + ".",
        "." + token,
        token + "\n",
        " " + token,
        token.replace(".", ". ", 1),
        f"{h}.{p}.{s[:10]}={s[10:]}",
        f"{h}.{p}.{s[:10]}+{s[11:]}",
        f"{h}.{p}.{s[:10]}/{s[11:]}",
        f"{h}.{p}?.{s}",
        f"{h}\n.{p}.{s}",
        token.replace("-", "+").replace("_", "/")
        if ("-" in token or "_" in token)
        else token + "+",
        token.encode(),
        bytearray(token.encode()),
        None,
        123,
        f"{h}.{p}.{s}".replace("e", "é", 1),
    ]
    for candidate in bad:
        rejected(candidate, keyset)
    assert jws.decode(token, keyset, NOW)[1] == PAYLOAD


_ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"


def _noncanonical_twin(segment: str) -> str:
    """Same decoded bytes, different spare bits in the last character."""
    rem = len(segment) % 4
    assert rem in (2, 3)
    index = _ALPHABET.index(segment[-1])
    twin = segment[:-1] + _ALPHABET[index | (1 if rem == 3 else 3)]
    assert twin != segment
    assert base64.urlsafe_b64decode(twin + "=" * (-len(twin) % 4)) == base64.urlsafe_b64decode(
        segment + "=" * (-len(segment) % 4)
    )
    return twin


@pytest.mark.parametrize("alg", ["HS256", "EdDSA", "ES256"])
def test_J19_noncanonical_base64(alg: str, keys: dict[str, SigningKey], keyset: KeySet) -> None:
    key = keys[alg]
    payload = {"sub": "alice"}
    while len(b64(raw_json(payload))) % 4 == 0:
        payload["pad"] = payload.get("pad", "") + "x"
    header = {"alg": alg, "kid": key.kid}
    while len(b64(raw_json(header))) % 4 == 0:
        header["typ"] = header.get("typ", "") + "x"
    token = forge(header, payload, key)
    assert jws.decode(token, keyset, NOW)[1] == payload
    h, p, s = token.split(".")
    rejected(f"{_noncanonical_twin(h)}.{p}.{s}", keyset)
    rejected(f"{h}.{_noncanonical_twin(p)}.{s}", keyset)
    rejected(f"{h}.{p}.{_noncanonical_twin(s)}", keyset)
    for part in range(3):  # explicit padding on any segment
        segments = [h, p, s]
        segments[part] += "=" * (-len(segments[part]) % 4 or 4)
        rejected(".".join(segments), keyset)


# --- J20 -------------------------------------------------------------------------------------


def test_J20_es256_special_signatures(keys: dict[str, SigningKey], keyset: KeySet) -> None:
    key = keys["ES256"]
    header = {"alg": "ES256", "kid": key.kid}
    good = forge(header, PAYLOAD, key)
    assert jws.decode(good, keyset, NOW)
    signing_input = good.rsplit(".", 1)[0]
    sig = base64.urlsafe_b64decode(good.rsplit(".", 1)[1] + "==")
    n = P256_ORDER
    specials = [0, 1, n - 1, n, n + 1, 2**256 - 1]
    r_ok, s_ok = int.from_bytes(sig[:32], "big"), int.from_bytes(sig[32:], "big")
    candidates = [bytes(64)]
    for value in specials:
        for r, s in ((value, value), (value, s_ok), (r_ok, value)):
            if r < 2**256 and s < 2**256:
                candidates.append(r.to_bytes(32, "big") + s.to_bytes(32, "big"))
    der = key._private.sign(
        signing_input.encode(),
        __import__("cryptography.hazmat.primitives.asymmetric.ec", fromlist=["ECDSA"]).ECDSA(
            hashes.SHA256()
        ),
    )  # type: ignore[attr-defined]
    assert decode_dss_signature(der)
    candidates += [der, sig + b"\x00", b"\x00" + sig, sig[:63], sig * 2]
    for candidate in candidates:
        rejected(f"{signing_input}.{b64(candidate)}", keyset)
        assert not key.verify(signing_input.encode(), candidate)


# --- J22 / J23 / JSON hardening ---------------------------------------------------------------


def test_J22_huge_inputs_rejected_fast(keys: dict[str, SigningKey], keyset: KeySet) -> None:
    key = keys["HS256"]
    nested = b'{"alg":"HS256","kid":"hs-1","x":' + b"[" * 100_000 + b"]" * 100_000 + b"}"
    many_claims = {f"c{i}": i for i in range(10_000)}
    cases = [
        "a" * 1_000_000,
        "." * 1_000_000,
        jws.encode(None, PAYLOAD, key) + "A" * 1_000_000,
        forge(nested, PAYLOAD, key),
        forge({"alg": "HS256", "kid": "hs-1"}, many_claims, key),
        "é" * 100_000,
    ]
    for token in cases:
        start = time.perf_counter()
        assert "too long" in rejected(token, keyset).detail
        assert time.perf_counter() - start < 0.05


def test_moderate_nesting_is_parsed(keys: dict[str, SigningKey], keyset: KeySet) -> None:
    key = keys["HS256"]
    token = forge({"alg": "HS256", "kid": "hs-1"}, b'{"x":' + b"[" * 200 + b"]" * 200 + b"}", key)
    value = jws.decode(token, keyset, NOW)[1]["x"]
    for _ in range(199):
        value = value[0]
    assert value == []


def test_J22_nesting_over_recursion_limit_is_invalid_token(
    keys: dict[str, SigningKey], keyset: KeySet
) -> None:
    import sys

    key = keys["HS256"]
    depth = sys.getrecursionlimit() + 100
    nest = b"[" * depth + b"]" * depth
    token = forge({"alg": "HS256", "kid": "hs-1"}, b'{"x":' + nest + b"}", key)
    assert len(token) <= jws.MAX_TOKEN_LENGTH
    rejected(token, keyset)


@pytest.mark.parametrize("codec", ["utf-16", "utf-16-le", "utf-32", "utf-8-sig"])
def test_J23_non_utf8_json(codec: str, keys: dict[str, SigningKey], keyset: KeySet) -> None:
    key = keys["EdDSA"]
    header = json.dumps({"alg": "EdDSA", "kid": key.kid}).encode(codec)
    rejected(forge(header, PAYLOAD, key), keyset)
    good_header = {"alg": "EdDSA", "kid": key.kid}
    rejected(forge(good_header, json.dumps(PAYLOAD).encode(codec), key), keyset)


def test_J23_invalid_utf8(keys: dict[str, SigningKey], keyset: KeySet) -> None:
    key = keys["EdDSA"]
    rejected(forge(b'{"alg":"EdDSA","kid":"ed-1","x":"\xff"}', PAYLOAD, key), keyset)
    rejected(forge({"alg": "EdDSA", "kid": "ed-1"}, b'{"sub":"\xc3\x28"}', key), keyset)


@pytest.mark.parametrize(
    "payload",
    [
        b"NaN",
        b'{"exp":NaN}',
        b'{"exp":Infinity}',
        b'{"exp":-Infinity}',
        b'{"exp":1e400}',
        b'{"exp":' + b"9" * 5000 + b"}",
        b'{"exp":' + b"9" * 21 + b"}",
        b'{"x":1.' + b"0" * 60 + b"}",
        b"[]",
        b'"string"',
        b"null",
        b"1",
        b"",
        b"{",
        b'{"a":1} x',
        b'{"a":1}{"b":2}',
    ],
)
def test_payload_must_be_a_plain_json_object(
    payload: bytes, keys: dict[str, SigningKey], keyset: KeySet
) -> None:
    key = keys["EdDSA"]
    token = forge({"alg": "EdDSA", "kid": "ed-1"}, payload, key)
    if payload == b"":
        token = token.replace("..", ".A.")  # keep three non-empty segments
    rejected(token, keyset)
    assert (
        jws.decode(
            forge({"alg": "EdDSA", "kid": "ed-1"}, {"exp": 1e300, "n": 10**19}, key), keyset, NOW
        )[1]["n"]
        == 10**19
    )


@pytest.mark.parametrize("header", [b"[]", b'"x"', b"null", b'{"alg":"EdDSA","kid":"ed-1"', b" "])
def test_header_must_be_a_json_object(
    header: bytes, keys: dict[str, SigningKey], keyset: KeySet
) -> None:
    rejected(forge(header, PAYLOAD, keys["EdDSA"]), keyset)


# --- properties ------------------------------------------------------------------------------


def _only_invalid_token(token: object, keyset: KeySet) -> None:
    try:
        result = jws.decode(token, keyset, NOW)
    except InvalidToken:
        return
    pytest.fail(f"decoded garbage into {result!r}")


@settings(max_examples=300, deadline=None)
@given(
    st.text(max_size=300)
    | st.binary(max_size=300)
    | st.from_regex(
        r"[A-Za-z0-9_-]{1,60}\.[A-Za-z0-9_-]{1,60}\.[A-Za-z0-9_-]{1,90}", fullmatch=True
    )
)
def test_random_input_never_yields_claims(keyset: KeySet, token: object) -> None:
    _only_invalid_token(token, keyset)


@settings(max_examples=300, deadline=None)
@given(data=st.data())
def test_any_single_character_change_is_rejected(
    keys: dict[str, SigningKey], keyset: KeySet, data: st.DataObject
) -> None:
    alg = data.draw(st.sampled_from(["HS256", "EdDSA", "ES256"]))
    token = jws.encode({"typ": "at+jwt"}, {"sub": "alice", "roles": ["user"]}, keys[alg])
    index = data.draw(st.integers(0, len(token) - 1))
    replacement = data.draw(st.characters(codec="utf-8").filter(lambda c: c != token[index]))
    mutated = token[:index] + replacement + token[index + 1 :]
    _only_invalid_token(mutated, keyset)
