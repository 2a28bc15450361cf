"""Signing keys, key sets and KeyManager persistence and rotation (J03, J24, J25)."""

from __future__ import annotations

import asyncio
import base64
import math

import pytest
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from satchel.clock import ManualClock
from satchel.errors import ConfigurationError
from satchel.jose.jwk import (
    ALGORITHMS,
    ES256Key,
    HS256Key,
    RS256Key,
    SigningKey,
    generate_key,
    key_from_jwk,
    key_from_stored,
)
from satchel.jose.keyset import KeySet
from satchel.keys.manager import INITIAL_KEY_RECORD, KeyManager, jwks_cache_control
from satchel.keys.schedule import (
    KeyRole,
    KeyStatus,
    default_reload_interval,
    describe,
    jwks_max_age,
    key_statuses,
    next_change,
    signing_record,
)
from satchel.stores.base import KeyState, StoredKey
from satchel.stores.memory import MemoryStore

MSG = b"header.payload"


@pytest.fixture(scope="module")
def rsa_key() -> RS256Key:
    # RSA generation is the slow part of this file; one key serves every test.
    return RS256Key.generate("rsa", bits=2048)


def make(alg: str, rsa_key: RS256Key) -> SigningKey:
    return rsa_key if alg == "RS256" else generate_key(alg, created_at=5.0)


@pytest.mark.parametrize("alg", ALGORITHMS)
def test_sign_verify_roundtrip_and_tamper(alg: str, rsa_key: RS256Key) -> None:
    key = make(alg, rsa_key)
    assert key.alg == alg
    sig = key.sign(MSG)
    assert key.verify(MSG, sig)
    assert not key.verify(MSG + b"x", sig)
    assert not key.verify(MSG, sig[:-1])
    assert not key.verify(MSG, b"")
    flipped = bytes([sig[0] ^ 1]) + sig[1:]
    assert not key.verify(MSG, flipped)


@pytest.mark.parametrize("alg", ALGORITHMS)
def test_stored_roundtrip_and_repr_hides_material(alg: str, rsa_key: RS256Key) -> None:
    key = make(alg, rsa_key)
    stored = key.to_stored(KeyState.ACTIVE)
    assert stored.alg == alg and stored.kid == key.kid and stored.state is KeyState.ACTIVE
    again = key_from_stored(stored)
    assert type(again) is type(key)
    assert again.verify(MSG, key.sign(MSG))  # same material
    for text in (repr(key), repr(stored), repr(again), repr(KeySet(key))):
        assert stored.material not in text
        assert "PRIVATE" not in text
    if alg == "HS256":
        assert stored.material[:16] not in repr(key)


def test_jwks_lists_public_keys_only(rsa_key: RS256Key) -> None:
    ed, es, hs = generate_key("EdDSA"), generate_key("ES256"), generate_key("HS256")
    ks = KeySet(ed, [(es, None), (hs, None), (rsa_key, None)])
    jwks = ks.jwks()
    kids = {k["kid"] for k in jwks["keys"]}
    assert kids == {ed.kid, es.kid, rsa_key.kid}
    for jwk in jwks["keys"]:
        assert "d" not in jwk and "k" not in jwk and "p" not in jwk
        assert jwk["use"] == "sig"
    assert {k["alg"] for k in jwks["keys"]} == {"EdDSA", "ES256", "RS256"}
    # A public JWK rebuilds a verify-only key that accepts the original's signatures.
    for jwk in jwks["keys"]:
        original = ks.get(jwk["kid"], 0.0)
        assert original is not None
        public = key_from_jwk(jwk)
        assert not public.can_sign
        assert public.verify(MSG, original.sign(MSG))
        with pytest.raises(ConfigurationError):
            public.sign(MSG)


@pytest.mark.parametrize("secret", [b"", b"secret", b"12345", b"x" * 31])
def test_J24_short_hmac_secret_is_a_configuration_error(secret: bytes) -> None:
    with pytest.raises(ConfigurationError):
        HS256Key("k", secret)


def test_J24_small_rsa_key_is_a_configuration_error() -> None:
    small = rsa.generate_private_key(public_exponent=65537, key_size=1024)
    with pytest.raises(ConfigurationError):
        RS256Key("k", private=small)
    with pytest.raises(ConfigurationError):
        RS256Key("k", public=small.public_key())


def test_es256_key_must_be_p256() -> None:
    with pytest.raises(ConfigurationError):
        ES256Key("k", private=ec.generate_private_key(ec.SECP384R1()))


@pytest.mark.parametrize(
    "kid", ["", "x" * 129, "a\nb", 123, None], ids=["empty", "long", "newline", "int", "none"]
)
def test_bad_kid_is_a_configuration_error(kid: object) -> None:
    with pytest.raises(ConfigurationError):
        HS256Key(kid, b"k" * 32)  # type: ignore[arg-type]


def test_keyset_get_never_falls_back() -> None:
    active, old = generate_key("EdDSA"), generate_key("EdDSA")
    ks = KeySet(active, [(old, 100.0)])
    assert ks.get(active.kid, 1e12) is active
    assert ks.get(old.kid, 100.0) is old
    assert ks.get(old.kid, 100.5) is None
    assert ks.get("nope", 0.0) is None
    assert ks.get("", 0.0) is None
    assert ks.jwks(now=101.0)["keys"] == [active.public_jwk()]


def test_keyset_without_signing_key() -> None:
    pub = key_from_jwk(generate_key("ES256").public_jwk() or {})
    ks = KeySet.verify_only([pub])
    with pytest.raises(ConfigurationError):
        _ = ks.active
    with pytest.raises(ConfigurationError):
        KeySet(pub)


@pytest.mark.parametrize(
    "change",
    [
        {"use": "enc"},
        {"key_ops": ["encrypt"]},
        {"key_ops": "verify"},
        {"alg": "HS256"},
        {"alg": "ES384"},
        {"crv": "P-384"},
        {"kty": "oct"},
        {"x": "AAAA"},
        {"x": "not base64!"},
    ],
)
def test_key_from_jwk_is_strict(change: dict[str, object]) -> None:
    jwk = dict(generate_key("ES256").public_jwk() or {})
    jwk.update(change)
    with pytest.raises(ConfigurationError):
        key_from_jwk(jwk)


def test_key_from_jwk_refuses_a_second_spelling_of_a_member() -> None:
    jwk = dict(generate_key("EdDSA").public_jwk() or {})
    # 32 bytes take 43 characters; the last one carries 2 unused bits, which must be zero.
    # Setting one decodes to the same bytes with a lenient decoder: refused here.
    last = jwk["x"][-1]
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
    twin = alphabet[alphabet.index(last) | 1]
    assert twin != last
    assert base64.urlsafe_b64decode(jwk["x"][:-1] + twin + "=") == base64.urlsafe_b64decode(
        jwk["x"] + "="
    )
    jwk["x"] = jwk["x"][:-1] + twin
    with pytest.raises(ConfigurationError) as info:
        key_from_jwk(jwk)
    assert info.value.detail == "JWK member 'x': invalid base64url."
    for bad, detail in (("", "expected unpadded"), (jwk["x"] + "=", "expected unpadded")):
        with pytest.raises(ConfigurationError, match=detail):
            key_from_jwk({**jwk, "x": bad})


def test_key_from_jwk_rejects_point_off_curve() -> None:
    jwk = dict(generate_key("ES256").public_jwk() or {})
    y = base64.urlsafe_b64decode(jwk["y"] + "=")
    jwk["y"] = base64.urlsafe_b64encode(bytes([y[0] ^ 1]) + y[1:]).rstrip(b"=").decode()
    with pytest.raises(ConfigurationError):
        key_from_jwk(jwk)


def test_corrupt_stored_key_is_a_configuration_error() -> None:
    bad = StoredKey("k", "EdDSA", "-----BEGIN PRIVATE KEY-----\nAAAA\n", KeyState.ACTIVE, 0.0)
    with pytest.raises(ConfigurationError) as info:
        key_from_stored(bad)
    assert "AAAA" not in info.value.detail
    wrong_type = generate_key("ES256").to_stored(KeyState.ACTIVE)
    wrong_type.alg = "EdDSA"
    with pytest.raises(ConfigurationError):
        key_from_stored(wrong_type)
    with pytest.raises(ConfigurationError):
        key_from_stored(StoredKey("k", "none", "x", KeyState.ACTIVE, 0.0))


# --- KeyManager ---------------------------------------------------------------------------


async def test_load_or_create_generates_once(manual_clock: ManualClock) -> None:
    store = MemoryStore()
    first = await KeyManager(store, manual_clock).load_or_create()
    assert first.active.alg == "EdDSA"
    manual_clock.advance(10)
    again = await KeyManager(store, manual_clock).load_or_create()
    assert again.active.kid == first.active.kid
    assert len(await store.list_keys()) == 1
    token_sig = first.active.sign(MSG)
    assert again.active.verify(MSG, token_sig)


async def test_concurrent_first_start_agrees_on_one_key(manual_clock: ManualClock) -> None:
    store = MemoryStore()
    managers = [KeyManager(store, manual_clock, alg="ES256") for _ in range(5)]
    sets = await asyncio.gather(*(m.load_or_create() for m in managers))
    assert len({ks.active.kid for ks in sets}) == 1
    assert [k.state for k in await store.list_keys()] == [KeyState.ACTIVE]
    assert await store.get_secret(INITIAL_KEY_RECORD) is not None


async def test_alg_mismatch_is_refused_not_regenerated(manual_clock: ManualClock) -> None:
    store = MemoryStore()
    await KeyManager(store, manual_clock, alg="EdDSA").load_or_create()
    with pytest.raises(ConfigurationError):
        await KeyManager(store, manual_clock, alg="ES256").load_or_create()
    assert len(await store.list_keys()) == 1


async def test_keys_without_active_one_are_refused(manual_clock: ManualClock) -> None:
    store = MemoryStore()
    await store.save_key(generate_key("EdDSA").to_stored(KeyState.RETIRED))
    with pytest.raises(ConfigurationError):
        await KeyManager(store, manual_clock).load_or_create()


async def test_J25_rotation_overlap(manual_clock: ManualClock) -> None:
    store = MemoryStore()
    manager = KeyManager(store, manual_clock, publish_delay=120)
    old = (await manager.load_or_create()).active
    old_sig = old.sign(MSG)
    manual_clock.advance(100)
    rotated_at = manual_clock()
    ks = await manager.rotate(overlap=600)
    # F14: the new key is published at once but the old one keeps signing for now.
    assert ks.active.kid == old.kid
    new_kid = next(k.kid for k in await manager.list() if k.kid != old.kid)
    assert {k["kid"] for k in ks.jwks(rotated_at)["keys"]} == {old.kid, new_kid}
    switch = rotated_at + 120
    states = {k.kid: (k.state, k.not_after) for k in await manager.list()}
    assert states[old.kid] == (KeyState.PREVIOUS, switch + 600)
    assert states[new_kid] == (KeyState.ACTIVE, None)
    manual_clock.advance(120)
    ks = manager.keyset
    new = ks.active
    assert new.kid == new_kid and new.alg == "EdDSA"
    # Inside the overlap both verify and both are published.
    previous = ks.get(old.kid, switch + 600)
    assert previous is not None and previous.verify(MSG, old_sig)
    assert {k["kid"] for k in ks.jwks(switch)["keys"]} == {old.kid, new.kid}
    # After the overlap the previous key is not used, in this set or a reloaded one.
    assert ks.get(old.kid, switch + 601) is None
    manual_clock.advance(601)
    reloaded = await KeyManager(store, manual_clock).load_or_create()
    assert reloaded.get(old.kid, manual_clock()) is None
    assert [k["kid"] for k in reloaded.jwks(manual_clock())["keys"]] == [new.kid]
    # The next rotation retires it for good.
    await manager.rotate(overlap=0)
    states = {k.kid: k.state for k in await manager.list()}
    assert states[old.kid] is KeyState.RETIRED
    assert states[new.kid] is KeyState.PREVIOUS


async def test_rotation_can_change_algorithm(manual_clock: ManualClock) -> None:
    store = MemoryStore()
    manager = KeyManager(store, manual_clock, alg="EdDSA", publish_delay=30)
    old = (await manager.load_or_create()).active
    await manager.rotate(alg="HS256", overlap=60)
    # A node configured for the new algorithm may start while the old key still signs.
    started = await KeyManager(store, manual_clock, alg="HS256").load_or_create()
    assert started.active.kid == old.kid
    with pytest.raises(ConfigurationError):
        await KeyManager(store, manual_clock, alg="EdDSA").load_or_create()
    manual_clock.advance(30)
    ks = manager.keyset
    assert ks.active.alg == "HS256"
    assert ks.get(old.kid, manual_clock()) is not None
    assert [k["kid"] for k in ks.jwks()["keys"]] == [old.kid]  # HS256 never published


def _record(kid: str, created_at: float, state: KeyState, not_after: float | None = None):  # type: ignore[no-untyped-def]
    return StoredKey(kid, "EdDSA", "unused", state, created_at, not_after)


def test_F14_signing_record_rule() -> None:
    first = _record("k1", 0.0, KeyState.ACTIVE)
    # The first key ever signs at once.
    assert signing_record([first], 0.0, 120) is first
    # Rotated at 10 (before k1 was "published" itself): k1, known everywhere, keeps signing.
    old = _record("k1", 0.0, KeyState.PREVIOUS, 130.0 + 60)
    new = _record("k2", 10.0, KeyState.ACTIVE)
    assert signing_record([old, new], 10.0, 120) is old
    assert signing_record([old, new], 129.9, 120) is old
    assert signing_record([old, new], 130.0, 120) is new
    # Two rotations inside one delay: each key signs only once its own delay is over.
    mid = _record("k2", 10.0, KeyState.PREVIOUS, 140.0 + 60)
    newest = _record("k3", 20.0, KeyState.ACTIVE)
    keys = [old, mid, newest]
    assert [signing_record(keys, t, 120) for t in (20.0, 130.0, 140.0)] == [old, mid, newest]
    # Created in the same instant: rotation demoted the PREVIOUS one, so ACTIVE is newer.
    twin_old = _record("zz", 0.0, KeyState.PREVIOUS, 500.0)
    twin_new = _record("aa", 0.0, KeyState.ACTIVE)
    assert signing_record([twin_old, twin_new], 0.0, 120) is twin_old
    assert signing_record([twin_old, twin_new], 120.0, 120) is twin_new
    # Retired and expired keys never sign; with nothing else left the newest signs at once.
    gone = _record("k1", 0.0, KeyState.RETIRED, 10.0)
    assert signing_record([gone, new], 10.0, 120) is new
    assert signing_record([gone], 10.0, 120) is None
    expired = _record("k1", 0.0, KeyState.PREVIOUS, 5.0)
    assert signing_record([expired, new], 10.0, 120) is new


def test_F14_next_change_is_the_first_instant_the_signer_can_change() -> None:
    old = _record("k1", 0.0, KeyState.PREVIOUS, 190.0)
    new = _record("k2", 10.0, KeyState.ACTIVE)
    # k1 passes its own delay at 120, k2 at 130, k1 stops verifying at 190.
    assert next_change([old, new], 10.0, 120) == 120.0
    assert next_change([old, new], 120.0, 120) == 130.0
    assert next_change([old, new], 130.0, 120) == 190.0
    assert next_change([old, new], 190.0, 120) == math.inf
    # Between two changes the signer is the same at every instant.
    for start in (10.0, 120.0, 130.0):
        until = next_change([old, new], start, 120)
        assert signing_record([old, new], start, 120) is signing_record(
            [old, new], min(until, 1e9) - 0.001, 120
        )


async def test_F14_keyset_switches_signer_when_the_publish_delay_passes(
    manual_clock: ManualClock,
) -> None:
    store = MemoryStore()
    manager = KeyManager(store, manual_clock, publish_delay=120)
    first = (await manager.load_or_create()).active.kid
    assert manager.keyset.active.kid == first  # cached from here on
    await manager.rotate()
    second = manager.keyset
    assert second.active.kid == first and len(second.kids()) == 2
    manual_clock.advance(119.9)
    assert manager.keyset.active.kid == first
    manual_clock.advance(0.1)
    assert manager.keyset.active.kid != first
    # A clock set back is answered afresh, not from the cache.
    manual_clock.advance(-60)
    assert manager.keyset.active.kid == first


def test_F14_key_statuses_name_signing_and_pending() -> None:
    old = _record("k1", 0.0, KeyState.PREVIOUS, 250.0)
    new = _record("k2", 100.0, KeyState.ACTIVE)
    gone = _record("k0", -50.0, KeyState.RETIRED, 0.0)
    stale = _record("k-1", -90.0, KeyState.PREVIOUS, 1.0)
    roles = {s.kid: (s.role, s.signs_from) for s in key_statuses([stale, gone, old, new], 150, 120)}
    assert roles == {
        "k-1": (KeyRole.EXPIRED, None),
        "k0": (KeyRole.RETIRED, None),
        "k1": (KeyRole.SIGNING, None),
        "k2": (KeyRole.PENDING, 220.0),
    }
    roles = {s.kid: s.role for s in key_statuses([old, new], 220, 120)}
    assert roles == {"k1": KeyRole.VERIFYING, "k2": KeyRole.SIGNING}


@pytest.mark.parametrize("bad", [-1, math.inf, math.nan, True, "120"])
def test_publish_delay_and_overlap_are_checked(bad: object) -> None:
    with pytest.raises(ConfigurationError):
        KeyManager(MemoryStore(), publish_delay=bad)  # type: ignore[arg-type]
    with pytest.raises(ConfigurationError):
        KeyManager(MemoryStore(), overlap=bad)  # type: ignore[arg-type]


async def test_immediate_rotation_retires_every_other_key(manual_clock: ManualClock) -> None:
    store = MemoryStore()
    manager = KeyManager(store, manual_clock)
    old = (await manager.load_or_create()).active
    manual_clock.advance(200)
    await manager.rotate(overlap=600)
    pending = manager.keyset
    assert pending.active.kid == old.kid
    ks = await manager.rotate(immediate=True)
    assert ks.active.kid not in {
        k.kid for k in await manager.list() if k.state is not KeyState.ACTIVE
    }
    assert ks.kids() == [ks.active.kid]  # the compromised key no longer verifies
    assert [k.state for k in await manager.list()].count(KeyState.RETIRED) == 2


async def test_refresh_rereads_only_when_due_and_reports_changes(
    manual_clock: ManualClock,
) -> None:
    store = MemoryStore()
    node = KeyManager(store, manual_clock)
    await node.load_or_create()
    other = KeyManager(store, manual_clock)
    await other.reload()
    await other.rotate()
    assert await node.refresh(60) is False  # loaded less than 60 s ago: no read
    assert len(node.keyset.kids()) == 1
    manual_clock.advance(60)
    assert await node.refresh(60) is True
    assert len(node.keyset.kids()) == 2
    manual_clock.advance(60)
    assert await node.refresh(60) is False  # re-read, nothing changed
    await node.rotate()
    assert await node.refresh(60) is True  # a rotation through this manager counts too
    assert await node.refresh(60) is False


@pytest.mark.parametrize("kind", ["memory", "sqlite", "redis", "postgres"])
async def test_key_manager_on_real_stores(
    make_stores, manual_clock: ManualClock, kind: str
) -> None:  # type: ignore[no-untyped-def]
    stores = await make_stores(kind)
    manager = KeyManager(stores.keys, manual_clock, alg="ES256")
    first = (await manager.load_or_create()).active
    manual_clock.advance(5)
    await manager.rotate(overlap=30)
    manual_clock.advance(manager.publish_delay)
    second = manager.keyset.active
    assert second.kid != first.kid
    other = await KeyManager(stores.keys, manual_clock, alg="ES256").load_or_create()
    assert other.active.kid == second.kid
    signed = first.sign(MSG)
    previous = other.get(first.kid, manual_clock())
    assert previous is not None and previous.verify(MSG, signed)
    assert other.get(first.kid, manual_clock() + 31) is None


# --- publication timing and role texts ---------------------------------------------------


@pytest.mark.parametrize("delay", [0, 1, 30, 119, 120, 600, 86_400])
def test_F14_jwks_max_age_and_reload_interval_fit_the_publish_delay(delay: float) -> None:
    max_age = jwks_max_age(delay)
    assert max_age <= 60 and (max_age < delay or delay == 0)
    assert 2 * default_reload_interval(delay) <= delay
    manager = KeyManager(MemoryStore(), publish_delay=delay)
    assert manager.jwks_max_age == max_age
    assert jwks_cache_control(manager) == f"public, max-age={max_age}"
    assert 2 * manager.reload_interval <= manager.publish_delay


def test_F14_defaults_and_the_reload_interval_check() -> None:
    manager = KeyManager(MemoryStore())
    assert (manager.publish_delay, manager.reload_interval, manager.jwks_max_age) == (120, 60, 60)
    assert jwks_cache_control(None) == "public, max-age=60"
    assert KeyManager(MemoryStore(), publish_delay=30).reload_interval == 15
    with pytest.raises(ConfigurationError, match="twice the key reload interval"):
        KeyManager(MemoryStore(), publish_delay=100, reload_interval=60)
    for bad in (-1, math.inf, True):
        with pytest.raises(ConfigurationError):
            KeyManager(MemoryStore(), reload_interval=bad)  # type: ignore[arg-type]


def _status(role: KeyRole, **times: float | None) -> KeyStatus:
    return KeyStatus(
        kid="k",
        alg="EdDSA",
        state=KeyState.ACTIVE,
        role=role,
        created_at=0.0,
        not_after=times.get("not_after"),
        signs_from=times.get("signs_from"),
    )


def test_describe_gives_each_role_in_words() -> None:
    now = 1_800_000_000.0  # 2027-01-15 08:00:00 UTC
    assert describe(_status(KeyRole.SIGNING), now) == "signing"
    assert (
        describe(_status(KeyRole.PENDING, signs_from=now + 120), now)
        == "next, signs from 2027-01-15 08:02:00 UTC (in 2 min)"
    )
    assert (
        describe(_status(KeyRole.VERIFYING, not_after=now + 86_520), now)
        == "verifies until 2027-01-16 08:02:00 UTC (in 1 d)"
    )
    assert (
        describe(_status(KeyRole.VERIFYING, not_after=now - 30), now)
        == "verifies until 2027-01-15 07:59:30 UTC (30 s ago)"
    )
    assert describe(_status(KeyRole.VERIFYING), now) == "verifies until the next rotation"
    assert describe(_status(KeyRole.RETIRED, not_after=now), now) == "retired"
    assert describe(_status(KeyRole.EXPIRED, not_after=now - 1), now) == "retired"
    assert "out of range" in describe(_status(KeyRole.VERIFYING, not_after=1e20), now)


def test_describe_follows_a_rotation(manual_clock: ManualClock) -> None:
    now = manual_clock()
    old = _record("k1", now - 1000, KeyState.PREVIOUS, now + 120 + 600)
    new = _record("k2", now, KeyState.ACTIVE)
    gone = _record("k0", now - 5000, KeyState.RETIRED, now - 4000)
    texts = {s.kid: describe(s, now) for s in key_statuses([gone, old, new], now, 120)}
    assert texts == {
        "k0": "retired",
        "k1": "signing",
        "k2": "next, signs from 2027-01-15 08:02:00 UTC (in 2 min)",
    }
    later = now + 120
    texts = {s.kid: describe(s, later) for s in key_statuses([gone, old, new], later, 120)}
    assert texts["k1"] == "verifies until 2027-01-15 08:12:00 UTC (in 10 min)"
    assert texts["k2"] == "signing"


# --- loading without creating ---------------------------------------------------------------


async def test_load_never_creates_a_key(manual_clock: ManualClock) -> None:
    store = MemoryStore()
    manager = KeyManager(store, manual_clock)
    assert await manager.load() is None
    assert await store.list_keys() == []
    assert await store.get_secret(INITIAL_KEY_RECORD) is None
    with pytest.raises(ConfigurationError):
        _ = manager.keyset  # nothing loaded, nothing to sign with
    with pytest.raises(ConfigurationError):
        await manager.published()
    created = (await KeyManager(store, manual_clock).load_or_create()).active
    loaded = await manager.load()
    assert loaded is not None and loaded.active.kid == created.kid
    assert [k.kid for k in await store.list_keys()] == [created.kid]


async def test_load_refuses_keys_without_an_active_one(manual_clock: ManualClock) -> None:
    store = MemoryStore()
    await store.save_key(generate_key("EdDSA").to_stored(KeyState.RETIRED))
    with pytest.raises(ConfigurationError):
        await KeyManager(store, manual_clock).load()
